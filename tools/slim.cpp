// The `slim` binary: a thin front over libslim's command dispatcher.
#include "cli/cli.h"

int main(int argc, char** argv) { return slim::cli_main(argc, argv); }

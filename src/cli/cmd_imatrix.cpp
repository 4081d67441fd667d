// `slim imatrix`: collect an importance matrix over calibration text, and/or
// merge and convert existing ones (llama.cpp's GGUF and .dat formats).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "cli/cli.h"
#include "compress/imatrix.h"
#include "compress/perplexity.h"
#include "gguf/gguf.h"
#include "store/store.h"

namespace slim {

CommandRun register_imatrix(CLI::App& app) {
  struct ImatrixOptions {
    std::string model, file, out;
    std::vector<std::string> in_files;
    int n_ctx = 0, n_batch = 512, n_chunks = -1, n_threads = 0;
    bool process_output = false, no_ppl = false;
  };
  auto o = std::make_shared<ImatrixOptions>();
  CLI::App* cmd = app.add_subcommand("imatrix", "collect an importance matrix over calibration text (for quantize --imatrix)");
  cmd->footer(
      "For every weight matmul of the layers, per input column: the sum of squared activations\n"
      "entering it, and the rows counted. The text is cut into chunks of -c tokens as\n"
      "`slim perplexity` does (BOS first in each). Writes llama.cpp's GGUF imatrix format, or its\n"
      "older .dat format when -o ends in .dat; --in-file reads either (merged, and without -f\n"
      "just merged or converted).");
  cmd->add_option("-m,--model", o->model, "model file (GGUF) or store name");
  cmd->add_option("MODEL", o->model, "model file (GGUF) or store name, instead of -m");
  cmd->add_option("-f,--file", o->file, "calibration text file");
  cmd->add_option("-o,--output", o->out, "output file (GGUF; .dat: the older format)")->required();
  cmd->add_option("-c,--ctx-size", o->n_ctx, "tokens a chunk (default 512, or the model's context when smaller); "
                                             "also the chunk size assumed for .dat inputs");
  cmd->add_option("-b,--batch-size", o->n_batch, "tokens a forward pass; chunks share one when it holds several");
  cmd->add_option("--chunks", o->n_chunks, "process at most N chunks");
  cmd->add_option("--in-file", o->in_files, "an existing imatrix to merge in (repeatable)");
  cmd->add_option("-t,--threads", o->n_threads, "threads (default: physical cores)");
  cmd->add_flag("--process-output", o->process_output, "also collect output.weight (as llama.cpp's flag)");
  cmd->add_flag("--no-ppl", o->no_ppl, "do not compute the perplexity of each chunk's second half");
  return [o]() -> int {
    if (o->file.empty() && o->in_files.empty()) return fail("give a calibration text (-f FILE) or --in-file files to merge");
    if (o->n_ctx < 0 || o->n_batch < 1 || o->n_threads < 0 || o->n_chunks == 0 || o->n_chunks < -1)
      return fail("bad -c, -b, -t or --chunks value");
    Imatrix all;
    bool have = false;
    for (const std::string& f : o->in_files) {
      auto m = read_imatrix(f, o->n_ctx);
      if (!m) return fail(m.error());
      std::fprintf(stderr, "read %zu entries (%lld chunks) from %s\n", m->tensors.size(), (long long)m->chunks, f.c_str());
      if (!have) all = std::move(*m), have = true;
      else if (auto st = merge_imatrix(all, *m); !st) return fail(f + ": " + st.message());
    }
    if (!o->file.empty()) {
      if (o->model.empty()) return fail("no model given (use -m FILE)");
      auto path = resolve_model(o->model);
      if (!path) return fail(path.error());
      std::ifstream tf(o->file, std::ios::binary);
      if (!tf) return fail("cannot read the text file " + o->file);
      std::stringstream ss;
      ss << tf.rdbuf();
      ImatrixParams p;
      p.n_ctx = o->n_ctx;
      if (p.n_ctx == 0) {
        auto f = GgufFile::open(*path);
        if (!f) return fail(f.error());
        auto arch = (*f)->get_string("general.architecture").value_or("");
        p.n_ctx = default_perplexity_ctx((int)(*f)->get_int(arch + ".context_length").value_or(0));
      }
      p.n_batch = o->n_batch;
      p.n_chunks = o->n_chunks;
      p.n_threads = o->n_threads;
      p.process_output = o->process_output;
      p.compute_ppl = !o->no_ppl;
      p.dataset = o->file;
      const bool tty = isatty(2);
      auto progress = [&](const ImatrixProgress& pr) {
        if (!tty) return;
        std::fprintf(stderr, "\rimatrix: chunk %d/%d", pr.chunk, pr.n_chunks);
        if (pr.ppl > 0) std::fprintf(stderr, ", PPL %.4f", pr.ppl);
        std::fprintf(stderr, ", %.0f tokens/s   ", pr.tokens_per_s);
        std::fflush(stderr);
      };
      const auto t0 = std::chrono::steady_clock::now();
      auto m = collect_imatrix(*path, ss.str(), p, progress);
      if (tty) std::fprintf(stderr, "\n");
      if (!m) return fail(m.error());
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "collected %zu weights over %lld chunks of %d tokens in %.2f s (%.0f tokens/s, model load included)\n",
                   m->tensors.size(), (long long)m->chunks, p.n_ctx, secs, secs > 0 ? m->chunks * p.n_ctx / secs : 0.0);
      if (!have) all = std::move(*m), have = true;
      else if (auto st = merge_imatrix(all, *m); !st) return fail(st.message());
    }
    if (auto st = write_imatrix(o->out, all); !st) return fail(st.message());
    std::printf("wrote %zu entries (%lld chunks of %d tokens) to %s\n", all.tensors.size(), (long long)all.chunks,
                all.chunk_size, o->out.c_str());
    return 0;
  };
}

}  // namespace slim

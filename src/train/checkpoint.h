// Training checkpoints: everything a run needs to continue exactly where it
// stopped — the F32 weights, AdamW's two moment vectors, the step reached and
// the run's settings (JSON, so resume can refuse a run with other settings).
//
// The container is a GGUF file (written to PATH.tmp.* and renamed, so a
// killed run never leaves a half-written checkpoint): the shape as
// slim.train.* keys, the weights under their own names, the moments as
// "adam_m.<name>" / "adam_v.<name>". It is not meant for `slim run`
// (export_gguf makes that file).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "train/params.h"

namespace slim::train {

struct Checkpoint {
  TrainModel model;
  std::vector<float> adam_m, adam_v;  // model.n_params() each
  int64_t step = 0;                   // optimizer steps done
  std::string config_json;            // the run's settings, as the trainer wrote them
};

Status save_checkpoint(const std::string& path, const Checkpoint& c);
Result<Checkpoint> load_checkpoint(const std::string& path);

}  // namespace slim::train

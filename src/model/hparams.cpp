// Reading hyperparameters common to all families from `<arch>.*` keys.
#include "model/hparams.h"

#include <cmath>

#include "gguf/gguf.h"

namespace slim {

Status read_common_hparams(const GgufFile& f, HParams& hp) {
  const std::string a = hp.arch + ".";
  auto need_int = [&](const char* key, int& out) -> Status {
    auto v = f.get_int(a + key);
    if (!v) return Status::error("missing metadata key " + a + key);
    if (*v <= 0 || *v > (1 << 30)) return Status::error(format("bad value %lld for %s%s", (long long)*v, a.c_str(), key));
    out = (int)*v;
    return Status();
  };
  SLIM_RETURN_IF_ERROR(need_int("embedding_length", hp.n_embd));
  SLIM_RETURN_IF_ERROR(need_int("block_count", hp.n_layer));
  SLIM_RETURN_IF_ERROR(need_int("attention.head_count", hp.n_head));
  // feed_forward_length may be an array (per layer) in some files; take the first
  if (const GgufArray* arr = f.get_array(a + "feed_forward_length"); arr && !arr->ints.empty()) {
    hp.n_ff = (int)arr->ints[0];
  } else {
    SLIM_RETURN_IF_ERROR(need_int("feed_forward_length", hp.n_ff));
  }
  hp.n_ctx_train = (int)f.get_int(a + "context_length").value_or(2048);
  hp.n_head_kv = (int)f.get_int(a + "attention.head_count_kv").value_or(hp.n_head);
  if (hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv != 0)
    return Status::error(format("head_count %d is not a multiple of head_count_kv %d", hp.n_head, hp.n_head_kv));
  hp.head_dim = (int)f.get_int(a + "attention.key_length").value_or(hp.n_embd / hp.n_head);
  hp.head_dim_v = (int)f.get_int(a + "attention.value_length").value_or(hp.head_dim);
  hp.n_rot = (int)f.get_int(a + "rope.dimension_count").value_or(hp.head_dim);
  if (hp.head_dim <= 0 || hp.head_dim > 1024 || hp.n_rot <= 0 || hp.n_rot > hp.head_dim || hp.n_rot % 2)
    return Status::error(format("bad head dimensions: key_length %d, rope dims %d", hp.head_dim, hp.n_rot));
  hp.rms_eps = (float)f.get_float(a + "attention.layer_norm_rms_epsilon").value_or(1e-5);
  hp.rope_freq_base = (float)f.get_float(a + "rope.freq_base").value_or(10000.0);
  hp.rope_freq_base_swa = (float)f.get_float(a + "rope.freq_base_swa").value_or(10000.0);
  hp.n_ctx_orig = (int)f.get_int(a + "rope.scaling.original_context_length").value_or(hp.n_ctx_train);
  hp.rope_attn_factor = (float)f.get_float(a + "rope.scaling.attn_factor").value_or(1.0);
  std::string scaling = f.get_string(a + "rope.scaling.type").value_or("none");
  float factor = (float)f.get_float(a + "rope.scaling.factor").value_or(0.0);
  if (scaling == "linear") {
    if (factor > 0) hp.rope_freq_scale = 1.0f / factor;
  } else if (scaling != "none" && scaling != "") {
    // llama3 scaling is carried by rope_freqs.weight; others change the math.
    if (scaling != "llama3") return Status::error("unsupported rope scaling type '" + scaling + "'");
  }
  if (auto s = f.get_float(a + "rope.scale_linear")) hp.rope_freq_scale = 1.0f / (float)*s;
  hp.attn_softcap = (float)f.get_float(a + "attn_logit_softcapping").value_or(0.0);
  hp.final_softcap = (float)f.get_float(a + "final_logit_softcapping").value_or(0.0);
  hp.sliding_window = (int)f.get_int(a + "attention.sliding_window").value_or(0);
  hp.swa_layer.assign(hp.n_layer, 0);

  if (const GgufArray* toks = f.get_array("tokenizer.ggml.tokens")) hp.n_vocab = (int)toks->size();
  if (auto v = f.get_int(a + "vocab_size")) hp.n_vocab = (int)*v;
  return Status();
}

}  // namespace slim

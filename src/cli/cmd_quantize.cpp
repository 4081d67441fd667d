// `slim quantize IN.gguf OUT.gguf TYPE`: a model in another (smaller) type,
// with llama-quantize's mixes, per-tensor overrides and an optional
// importance matrix (compress/quantize.h). A progress bar on a terminal,
// quiet when piped; notes about fallbacks on stderr, a summary on stdout.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "base/progress_line.h"
#include "cli/cli.h"
#include "compress/imatrix.h"
#include "compress/quantize.h"
#include "gguf/gguf.h"
#include "kernels/threadpool.h"

namespace slim {

namespace {

std::string mib(double b) { return format("%.2f MiB", b / 1048576.0); }

std::string shape_of(const std::vector<int64_t>& ne) {
  std::string s;
  for (int64_t d : ne) s += format("%s%lld", s.empty() ? "" : " x ", (long long)d);
  return s;
}

std::string type_mix(const QuantizePlan& p) {
  std::map<std::string, int> by_type;
  for (const auto& t : p.tensors) ++by_type[type_name(t.to)];
  std::string mix;
  for (auto& [name, count] : by_type) mix += format("%s%s x%d", mix.empty() ? "" : ", ", name.c_str(), count);
  return mix;
}

// A one-line bar redrawn in place on a terminal, at most ten times a second.
class ProgressBar {
 public:
  explicit ProgressBar(bool live) : live_(live) {}
  void update(const QuantizeProgress& q) {
    if (!live_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100) && q.done_bytes < q.total_bytes) return;
    last_ = now;
    const double frac = q.total_bytes ? (double)q.done_bytes / (double)q.total_bytes : 1;
    const int width = 30, filled = (int)(frac * width);
    const double secs = std::chrono::duration<double>(now - start_).count();
    std::string line = "\rquantizing [" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
    line += format(" %3d%%  %s / %s", (int)(100 * frac), mib((double)q.done_bytes).c_str(),
                   mib((double)q.total_bytes).c_str());
    if (frac > 0.02 && frac < 1) {
      const int eta = (int)(secs * (1 - frac) / frac);
      line += format_eta(eta);
    }
    line += format("  %-32.32s", q.name);
    out_.draw(line);
  }
  void finish() { out_.finish(); }

 private:
  bool live_;
  ProgressLine out_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
};

// Ctrl-C (or a kill) during a long quantization must not leave the writer's
// temporary OUT.tmp.<pid>.* behind. The signals are blocked in every thread
// (the pool inherits the mask) and a watcher thread takes them synchronously:
// it may then remove files and exit, which a signal handler may not.
void remove_temporaries_on_signal(const std::string& out) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) return;
  std::thread([set, out]() {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) return;
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path p = fs::absolute(out, ec);
    const std::string prefix = p.filename().string() + ".tmp." + std::to_string(::getpid()) + ".";
    for (const auto& e : fs::directory_iterator(p.parent_path(), ec))
      if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove(e.path(), ec);
    std::fprintf(stderr, "\nslim: error: interrupted; %s not written\n", out.c_str());
    std::_Exit(128 + sig);
  }).detach();
}

std::string recipes_help() {
  std::string s =
      "Types and their recipes (matrices only; 1-D tensors, norms and MoE router gates stay as they are;\n"
      "\"output\" is output.weight, or token_embd.weight when the embeddings are tied; rows a type's block\n"
      "cannot divide fall back: Q2_K/Q3_K/IQ4_XS -> IQ4_NL, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0,\n"
      "else F16; the output tensor is Q8_0 when its rows are not a multiple of 256):\n";
  for (const FileType& f : kFileTypes) s += format("  %-7s %s\n", f.name, f.recipe);
  s += "More-bits layers: the first and last eighth of the layers, and every third layer in between.\n"
       "Also as llama-quantize: a fused attn_qkv gets Q4_K in Q3_K_M/L, Q5_K in Q4_K_M, Q6_K in Q5_K_M;\n"
       "8-expert MoE models get attn_v and attn_k Q8_0 and, in the 2-4 bit mixes, attn_output Q5_K;\n"
       "80-layer models get attn_v at least Q5_K where the mix says Q3_K or Q4_K.\n"
       "Every block's scales (and mins) are searched to minimise the squared error, weighted by the\n"
       "magnitude sqrt(sigma^2 + x^2) (sigma^2: the row's mean square), times the imatrix column mean when given.";
  return s;
}

}  // namespace

CommandRun register_quantize(CLI::App& app) {
  struct Opts {
    std::string in, out, type, output_type, token_embd_type, imatrix;
    std::vector<std::string> tensor_types;
    bool pure = false, allow_requantize = false, dry_run = false;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("quantize", "write a model in another type (Q4_K_M, Q8_0, ...)");
  cmd->add_option("IN", o->in, "input GGUF file (F32, F16 or BF16; a quantized one with --allow-requantize)")
      ->required();
  cmd->add_option("OUT", o->out, "output GGUF file")->required();
  cmd->add_option("TYPE", o->type, "file type: " + file_type_names())->required();
  cmd->add_flag("--pure", o->pure, "TYPE for every matrix: no mix, no more bits for the output tensor");
  cmd->add_option("--output-tensor-type", o->output_type, "type of the output tensor (the LM head)");
  cmd->add_option("--token-embedding-type", o->token_embd_type, "type of token_embd.weight");
  cmd->add_option("--tensor-type", o->tensor_types,
                  "PATTERN=TYPE: TYPE for tensors whose name matches PATTERN, an ECMAScript regular expression "
                  "searched anywhere in the name (e.g. 'attn_v=q8_0', '^blk\\.0\\.'); repeatable, the first "
                  "match wins; --output-tensor-type and --token-embedding-type win over it");
  cmd->add_option("--imatrix", o->imatrix, "importance matrix (slim imatrix or llama-imatrix, .gguf or .dat)");
  cmd->add_flag("--allow-requantize", o->allow_requantize, "accept an already quantized input (loses quality)");
  cmd->add_option("-t,--threads", o->threads, "threads (default: physical cores)");
  cmd->add_flag("--dry-run", o->dry_run, "print every tensor's planned type, write nothing");
  cmd->footer(recipes_help());
  return [o]() {
    if (o->threads < 0) return fail(format("bad thread count %d", o->threads));
    QuantizeParams p;
    p.ftype = o->type;
    if (!find_file_type(o->type)) return fail("unknown type '" + o->type + "' (known: " + file_type_names() + ")");
    p.pure = o->pure;
    p.allow_requantize = o->allow_requantize;
    p.n_threads = o->threads;
    if (!o->output_type.empty()) {
      auto t = parse_quant_type(o->output_type);
      if (!t) return fail("--output-tensor-type: " + t.error());
      p.output_type = *t;
    }
    if (!o->token_embd_type.empty()) {
      auto t = parse_quant_type(o->token_embd_type);
      if (!t) return fail("--token-embedding-type: " + t.error());
      p.token_embd_type = *t;
    }
    for (const auto& spec : o->tensor_types) {
      auto ov = parse_tensor_type_override(spec);
      if (!ov) return fail(ov.error());
      p.overrides.push_back(*ov);
    }
    Imatrix im;
    if (!o->imatrix.empty()) {
      auto r = read_imatrix(o->imatrix);
      if (!r) return fail(o->imatrix + ": " + r.error());
      im = std::move(*r);
      p.imatrix = &im;
      p.imatrix_path = o->imatrix;
    }
    auto fr = GgufFile::open(o->in);
    if (!fr) return fail(fr.error());
    auto plan = plan_quantize(**fr, p);
    if (!plan) return fail(plan.error());
    fr->reset();  // quantize_file opens it again; keep one mapping at a time
    for (const auto& t : plan->tensors)
      if (!t.note.empty()) std::fprintf(stderr, "slim: note: %s: %s\n", t.name.c_str(), t.note.c_str());
    if (p.imatrix) {
      int missing = 0;
      for (const auto& t : plan->tensors)
        if (t.convert && type_traits(t.to).is_quantized && !t.importance) {
          if (missing++ < 8) std::fprintf(stderr, "slim: note: %s: no imatrix entry, magnitude weights\n", t.name.c_str());
        }
      if (missing > 8) std::fprintf(stderr, "slim: note: ... %d tensors without an imatrix entry in all\n", missing);
    }
    if (o->dry_run) {
      for (const auto& t : plan->tensors)
        std::printf("%-36s %-7s -> %-7s %-16s%s%s\n", t.name.c_str(), type_name(t.from), type_name(t.to),
                    shape_of(t.ne).c_str(), t.importance ? " imatrix" : "",
                    t.convert ? "" : " (copied)");
      std::printf("%s: %zu tensors (%s), %s -> %s of tensor data, %.2f bits per weight\n", plan->ftype->name,
                  plan->tensors.size(), type_mix(*plan).c_str(), mib((double)plan->in_bytes).c_str(),
                  mib((double)plan->out_bytes).c_str(), plan->bpw());
      return 0;
    }
    remove_temporaries_on_signal(o->out);
    ProgressBar bar(::isatty(2) != 0);
    auto r = quantize_file(o->in, o->out, p, [&](const QuantizeProgress& q) { bar.update(q); });
    if (r) bar.update({r->plan.out_bytes, r->plan.out_bytes, 0, 0, "done"});  // the last update may have been skipped
    bar.finish();
    if (!r) return fail(r.error());
    const int threads = o->threads > 0 ? o->threads : physical_core_count();
    std::printf("wrote %s: %s, %zu tensors (%s)\n", o->out.c_str(), r->plan.ftype->name, r->plan.tensors.size(),
                type_mix(r->plan).c_str());
    std::printf("tensor data %s -> %s, %.2f bits per weight; file %s; %.2f s (%.1f MB/s of input, %d threads)\n",
                mib((double)r->plan.in_bytes).c_str(), mib((double)r->plan.out_bytes).c_str(), r->plan.bpw(),
                mib((double)r->file_bytes).c_str(), r->seconds, r->plan.in_bytes / 1e6 / std::max(r->seconds, 1e-9),
                threads);
    return 0;
  };
}

}  // namespace slim

// `slim train` (cross-entropy, from scratch or continued) and `slim distill`
// (a student learning a teacher's next-token distributions): the options
// shared by both, the data source, the run with its progress line, JSON log,
// checkpoints and resume, and the export to GGUF. The work is in src/train/.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/progress_line.h"
#include "cli/cli.h"
#include "compress/recipe.h"
#include "engine/engine.h"
#include "gguf/gguf.h"
#include "kernels/threadpool.h"
#include "store/store.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/trainer.h"

namespace slim {

namespace {

using namespace train;

struct TrainCliOptions {
  // model and data
  std::string init, shape, vocab_from, text, out, type = "F32", name;
  std::string teacher, student, student_shape;  // distill
  int teacher_samples = 0;
  std::string save_samples;
  float sample_temperature = 1.0f;
  // run
  TrainOptions run;
  int n_ctx = 256;
  double eval_fraction = 0.05;
  int threads = 0;
  std::string checkpoint, resume, json_log;
};

void add_run_options(CLI::App* cmd, TrainCliOptions& o) {
  cmd->add_option("-o,--output", o.out, "the trained model (GGUF), written when the run ends")->required();
  cmd->add_option("--steps", o.run.steps, "optimizer steps (default 1000)");
  cmd->add_option("--lr", o.run.lr, "peak learning rate (default 1e-3)");
  cmd->add_option("--min-lr-ratio", o.run.min_lr_ratio, "the cosine schedule ends at lr times this (default 0.1)");
  cmd->add_option("--warmup", o.run.warmup, "linear warm-up steps (default 5% of --steps)");
  cmd->add_option("--batch", o.run.batch, "sequences a micro-batch (default 8)");
  cmd->add_option("--grad-accum", o.run.grad_accum, "micro-batches summed into one step (default 1)");
  cmd->add_option("--ctx", o.n_ctx, "tokens a sequence (default 256)");
  cmd->add_option("--seed", o.run.seed, "data order, initial weights and teacher samples (default 1)");
  cmd->add_option("--weight-decay", o.run.adam.weight_decay, "AdamW decoupled weight decay on matrices (default 0.1)");
  cmd->add_option("--beta1", o.run.adam.beta1, "AdamW beta1 (default 0.9)");
  cmd->add_option("--beta2", o.run.adam.beta2, "AdamW beta2 (default 0.95)");
  cmd->add_option("--clip", o.run.clip, "clip the global gradient norm to this; 0: off (default 1)");
  cmd->add_option("--eval-fraction", o.eval_fraction, "fraction of the text's sequences held out (default 0.05)");
  cmd->add_option("--eval-every", o.run.eval_every, "held-out loss every N steps; 0: at the end only (default 100)");
  cmd->add_option("--eval-seqs", o.run.eval_seqs, "held-out sequences an evaluation uses; 0: all");
  cmd->add_option("--save-every", o.run.save_every, "write a checkpoint every N steps (and at the end)");
  cmd->add_option("--checkpoint", o.checkpoint, "checkpoint file (default OUT.ckpt)");
  cmd->add_option("--resume", o.resume, "continue the run a checkpoint holds (same settings)");
  cmd->add_option("--json-log", o.json_log, "one JSON line a step (loss, eval loss, lr, grad norm, tokens/s)");
  cmd->add_option("--type", o.type, "type of the exported model: F32 or any slim quantize type (default F32)");
  cmd->add_option("--name", o.name, "general.name of the exported model");
  cmd->add_option("-t,--threads", o.threads, "threads (default: physical cores)");
}

Status check_options(const TrainCliOptions& o) {
  const TrainOptions& r = o.run;
  if (r.steps < 1) return Status::error("--steps must be at least 1");
  if (r.batch < 1 || r.grad_accum < 1) return Status::error("--batch and --grad-accum must be at least 1");
  if (o.n_ctx < 2 || o.n_ctx > 65536) return Status::error(format("bad --ctx %d", o.n_ctx));
  if (!(r.lr > 0) || !std::isfinite(r.lr)) return Status::error("--lr must be positive");
  if (r.min_lr_ratio < 0 || r.min_lr_ratio > 1) return Status::error("--min-lr-ratio must be in [0, 1]");
  if (r.adam.beta1 < 0 || r.adam.beta1 >= 1 || r.adam.beta2 < 0 || r.adam.beta2 >= 1)
    return Status::error("--beta1 and --beta2 must be in [0, 1)");
  if (r.adam.weight_decay < 0 || r.clip < 0) return Status::error("--weight-decay and --clip must not be negative");
  if (o.eval_fraction < 0 || o.eval_fraction >= 1) return Status::error("--eval-fraction must be in [0, 1)");
  if (r.loss.distill) {
    if (!(r.loss.temperature > 0)) return Status::error("--temperature must be positive");
    if (r.loss.alpha < 0 || r.loss.alpha > 1) return Status::error("--alpha must be in [0, 1]");
    if (r.teacher_top_k < 0) return Status::error("--top-k must not be negative");
  }
  if (o.threads < 0) return Status::error(format("bad thread count %d", o.threads));
  // Checked before the run, not after it, so a typo does not cost the training.
  if (!find_file_type(o.type))
    return Status::error("--type: unknown type '" + o.type + "' (known: " + file_type_names() + ")");
  return Status();
}

// A new model has seen positions up to --ctx only; unless the shape names its
// context, that is the context_length it is exported with.
Result<Shape> shape_for_run(const std::string& spec, int n_vocab, int n_ctx) {
  auto s = parse_shape(spec, n_vocab);
  if (s && spec.find("ctx=") == std::string::npos) s->n_ctx_train = n_ctx;
  return s;
}

// The vocabulary of two files is the same when their token lists are.
Status check_same_vocab(const GgufFile& a, const GgufFile& b, const std::string& what) {
  const GgufArray* ta = a.get_array("tokenizer.ggml.tokens");
  const GgufArray* tb = b.get_array("tokenizer.ggml.tokens");
  if (!ta || !tb) return Status::error(what + ": no tokenizer.ggml.tokens to compare vocabularies");
  if (ta->strings != tb->strings)
    return Status::error(format("%s: the vocabularies differ (%zu and %zu tokens): the student must use the teacher's tokenizer",
                                what.c_str(), ta->size(), tb->size()));
  return Status();
}

// Writes the teacher's samples as text, one sequence a paragraph.
Status write_samples(const Tokenizer& tok, const Dataset& d, const std::string& path) {
  std::string text;
  for (const auto* set : {&d.train, &d.eval})
    for (const auto& s : *set) text += tok.detokenize(s, true) + "\n\n";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f || !f.write(text.data(), (std::streamsize)text.size())) return Status::error("cannot write " + path);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Status::error("cannot write " + path);
  return Status();
}

// The run itself, after the model, its vocabulary source and the data are known.
int train_and_export(TrainCliOptions& o, TrainModel& m, const GgufFile& vocab_src, const Dataset& data,
                     Engine* teacher) {
  TrainState state;
  const std::string config = options_json(o.run, m.shape, data.n_ctx);
  if (!o.resume.empty()) {
    auto c = load_checkpoint(o.resume);
    if (!c) return fail(o.resume + ": " + c.error());
    if (c->config_json != config)
      return fail(o.resume + ": the checkpoint was made with other settings (" + c->config_json + "); resume with the same ones");
    if (c->model.n_params() != m.n_params()) return fail(o.resume + ": the checkpoint's model has another shape");
    m = std::move(c->model);
    state.mom = std::move(c->adam_m), state.vel = std::move(c->adam_v), state.step = c->step;
  }
  if (o.run.save_every > 0) o.run.checkpoint = o.checkpoint.empty() ? o.out + ".ckpt" : o.checkpoint;

  std::unique_ptr<std::ofstream> jlog;
  if (!o.json_log.empty()) {
    jlog = std::make_unique<std::ofstream>(o.json_log, state.step > 0 ? std::ios::app : std::ios::trunc);
    if (!*jlog) return fail("cannot write " + o.json_log);
  }
  const bool tty = isatty(2);
  const int64_t start_step = state.step;  // a resumed run's ETA counts from here
  ProgressLine line;
  double last_eval = NAN;
  auto on_step = [&](const StepLog& s) {
    if (!std::isnan(s.eval_ce)) last_eval = s.eval_ce;
    if (jlog) {
      nlohmann::json j = {{"step", s.step}, {"loss", s.loss}, {"ce", s.ce}, {"lr", s.lr}, {"grad_norm", s.grad_norm},
                          {"tokens_per_s", s.tokens_per_s}, {"elapsed_s", s.elapsed_s}};
      if (o.run.loss.distill) j["kl"] = s.kl;
      if (!std::isnan(s.eval_ce)) j["eval_ce"] = s.eval_ce, j["eval_ppl"] = std::exp(s.eval_ce);
      *jlog << j.dump() << "\n";
      jlog->flush();
    }
    if (tty) {
      const double per_step = s.elapsed_s / (double)std::max<int64_t>(1, s.step - start_step);
      std::string eval = std::isnan(last_eval) ? "" : format("  eval %.4f", last_eval);
      line.draw(format("\rstep %lld/%lld  loss %.4f%s  lr %.2e  %.0f tok/s", (long long)s.step, (long long)s.steps,
                       s.loss, eval.c_str(), s.lr, s.tokens_per_s) +
                format_eta((int)(per_step * (double)(s.steps - s.step))) + "   ");
    }
  };
  ThreadPool pool(o.threads);
  auto r = run_training(m, state, data, o.run, teacher, &pool, on_step);
  line.finish();
  if (!r) return fail(r.error());

  ExportOptions ex;
  ex.path = o.out;
  ex.type = o.type;
  ex.name = o.name;
  ex.n_threads = o.threads;
  if (auto st = export_gguf(m, vocab_src, ex); !st) return fail(st.message());
  std::string eval = std::isnan(last_eval) ? "" : format(", held-out loss %.4f (ppl %.3f)", last_eval, std::exp(last_eval));
  const double final_loss = r->log.empty() ? NAN : r->log.back().loss;
  std::printf("%lld steps, %zu parameters, last loss %.4f%s, %.0f tokens/s; wrote %s\n", (long long)state.step,
              m.n_params(), final_loss, eval.c_str(), r->tokens_per_s, o.out.c_str());
  return 0;
}

}  // namespace

CommandRun register_train(CLI::App& app) {
  auto o = std::make_shared<TrainCliOptions>();
  CLI::App* cmd = app.add_subcommand("train", "train a model with cross-entropy on a text (from scratch or continued)");
  cmd->add_option("-m,--model", o->init, "initial weights (GGUF or store name): continue training it");
  cmd->add_option("--shape", o->shape,
                  "a new model from random weights: dim=N,layers=N,heads=N,kv_heads=N,ffn=N"
                  "[,head_dim=N,arch=llama|qwen2|qwen3,tied=0|1,ctx=N,rope_theta=X,eps=X]");
  cmd->add_option("--vocab-from", o->vocab_from, "the model whose tokenizer and chat template the new one takes");
  cmd->add_option("-f,--file", o->text, "training text (the last --eval-fraction held out)")->required();
  add_run_options(cmd, *o);
  return [o]() {
    if (auto st = check_options(*o); !st) return fail(st.message());
    if (o->init.empty() == o->shape.empty()) return fail("give exactly one of -m MODEL and --shape SPEC");
    if (!o->shape.empty() && o->vocab_from.empty()) return fail("--shape needs --vocab-from MODEL for its tokenizer");
    auto vpath = resolve_model(o->vocab_from.empty() ? o->init : o->vocab_from);
    if (!vpath) return fail(vpath.error());
    auto vf = GgufFile::open(*vpath);
    if (!vf) return fail(vf.error());
    auto tok = Tokenizer::from_gguf(**vf);
    if (!tok) return fail(*vpath + ": " + tok.error());
    Result<TrainModel> m = Status::error("");
    if (!o->init.empty()) {
      auto ip = resolve_model(o->init);
      if (!ip) return fail(ip.error());
      m = init_from_gguf(*ip);
      if (m && !o->vocab_from.empty()) {
        auto inf = GgufFile::open(*ip);
        if (!inf) return fail(inf.error());
        if (auto st = check_same_vocab(**inf, **vf, "--vocab-from"); !st) return fail(st.message());
      }
    } else {
      const int n_vocab = (int)(*tok)->n_vocab();
      auto s = shape_for_run(o->shape, n_vocab, o->n_ctx);
      if (!s) return fail(s.error());
      m = init_from_shape(*s, o->run.seed);
    }
    if (!m) return fail(m.error());
    auto text = read_text_file(o->text);
    if (!text) return fail(text.error());
    auto data = dataset_from_text(**tok, *text, {o->n_ctx, o->eval_fraction});
    if (!data) return fail(o->text + ": " + data.error());
    return train_and_export(*o, *m, **vf, *data, nullptr);
  };
}

CommandRun register_distill(CLI::App& app) {
  auto o = std::make_shared<TrainCliOptions>();
  o->run.loss.distill = true;
  o->run.loss.temperature = 2.0f;
  o->run.loss.alpha = 0.5f;
  CLI::App* cmd = app.add_subcommand("distill", "train a smaller student to match a teacher model's predictions");
  cmd->add_option("--teacher", o->teacher, "the teacher (GGUF or store name), run by slim's inference engine")->required();
  cmd->add_option("--student", o->student, "the student's initial weights (e.g. a pruned teacher)");
  cmd->add_option("--student-shape", o->student_shape,
                  "a new student from random weights with the teacher's vocabulary (same syntax as train --shape)");
  cmd->add_option("-f,--file", o->text, "training text");
  cmd->add_option("--teacher-samples", o->teacher_samples,
                  "no text: train on N sequences sampled from the teacher (sequence-level distillation)");
  cmd->add_option("--sample-temperature", o->sample_temperature, "temperature of those samples (default 1)");
  cmd->add_option("--save-samples", o->save_samples, "also write the teacher's samples to this text file");
  cmd->add_option("--temperature", o->run.loss.temperature, "softmax temperature of the KL term (default 2)");
  cmd->add_option("--alpha", o->run.loss.alpha,
                  "loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy (default 0.5)");
  cmd->add_option("--top-k", o->run.teacher_top_k, "teacher tokens kept a position, renormalised; 0: all (default 64)");
  add_run_options(cmd, *o);
  return [o]() {
    if (auto st = check_options(*o); !st) return fail(st.message());
    if (o->student.empty() == o->student_shape.empty()) return fail("give exactly one of --student and --student-shape");
    if (o->text.empty() == (o->teacher_samples <= 0)) return fail("give exactly one of -f TEXT and --teacher-samples N");
    auto tpath = resolve_model(o->teacher);
    if (!tpath) return fail(tpath.error());
    auto tf = GgufFile::open(*tpath);
    if (!tf) return fail(tf.error());
    EngineParams ep;
    ep.n_ctx = o->n_ctx;
    ep.n_seq = o->teacher_samples > 0 ? 8 : 1;
    ep.n_threads = o->threads;
    ep.n_batch = std::max(512, o->n_ctx);
    ep.cache_type = CacheType::F32;
    auto teacher = Engine::load(*tpath, ep);
    if (!teacher) return fail(*tpath + ": " + teacher.error());
    Result<TrainModel> m = Status::error("");
    if (!o->student.empty()) {
      auto sp = resolve_model(o->student);
      if (!sp) return fail(sp.error());
      auto sf = GgufFile::open(*sp);
      if (!sf) return fail(sf.error());
      if (auto st = check_same_vocab(**sf, **tf, "--student"); !st) return fail(st.message());
      m = init_from_gguf(*sp);
    } else {
      auto s = shape_for_run(o->student_shape, (*teacher)->model().hp.n_vocab, o->n_ctx);
      if (!s) return fail("student " + s.error());
      m = init_from_shape(*s, o->run.seed);
    }
    if (!m) return fail(m.error());
    if (m->shape.n_vocab != (*teacher)->model().hp.n_vocab)
      return fail(format("the student has %d tokens, the teacher %d: the student must use the teacher's vocabulary",
                         m->shape.n_vocab, (*teacher)->model().hp.n_vocab));
    Result<Dataset> data = Status::error("");
    if (o->teacher_samples > 0) {
      SampleOptions so;
      so.n_seq = o->teacher_samples;
      so.n_eval = o->eval_fraction > 0 ? std::max(1, (int)std::lround(o->teacher_samples * o->eval_fraction)) : 0;
      so.n_ctx = o->n_ctx;
      so.temperature = o->sample_temperature;
      so.seed = o->run.seed;
      data = dataset_from_teacher(**teacher, so);
      if (data && !o->save_samples.empty())
        if (auto st = write_samples((*teacher)->tokenizer(), *data, o->save_samples); !st) return fail(st.message());
    } else {
      auto text = read_text_file(o->text);
      if (!text) return fail(text.error());
      data = dataset_from_text((*teacher)->tokenizer(), *text, {o->n_ctx, o->eval_fraction});
    }
    if (!data) return fail(data.error());
    return train_and_export(*o, *m, **tf, *data, teacher->get());
  };
}

}  // namespace slim

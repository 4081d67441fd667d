// Request parsing and response helpers of the HTTP API (server_impl.h).
#include <cmath>
#include <cstring>
#include <ctime>

#include "gguf/gguf.h"
#include "server/server_impl.h"
#include "store/planner.h"
#include "store/store.h"
#include "tokenizer/tokenizer.h"

namespace slim {


[[noreturn]] void bad_request(const std::string& msg) { throw ApiError{400, msg, "invalid_request_error", ""}; }

json error_body(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  // OpenAI's {"error": {...}}; Ollama clients read "error" as a string, so
  // the /api routes get {"error": "message"}.
  return json{{"error", err}};
}

void send_error(const httplib::Request& req, httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  json body = req.path.rfind("/api/", 0) == 0 ? json{{"error", e.message}} : error_body(e);
  res.set_content(body.dump(), "application/json");
}


template <>
double field(const json& b, const char* k, double def) {
  if (!b.contains(k) || b[k].is_null()) return def;
  if (!b[k].is_number()) bad_request(std::string("'") + k + "' must be a number");
  double v = b[k].get<double>();
  if (!std::isfinite(v)) bad_request(std::string("'") + k + "' must be finite");
  return v;
}
template <>
int64_t field(const json& b, const char* k, int64_t def) {
  if (!b.contains(k) || b[k].is_null()) return def;
  if (!b[k].is_number_integer()) bad_request(std::string("'") + k + "' must be an integer");
  return b[k].get<int64_t>();
}
template <>
bool field(const json& b, const char* k, bool def) {
  if (!b.contains(k) || b[k].is_null()) return def;
  if (!b[k].is_boolean()) bad_request(std::string("'") + k + "' must be a boolean");
  return b[k].get<bool>();
}
template <>
std::string field(const json& b, const char* k, std::string def) {
  if (!b.contains(k) || b[k].is_null()) return def;
  if (!b[k].is_string()) bad_request(std::string("'") + k + "' must be a string");
  return b[k].get<std::string>();
}

json parse_body(const httplib::Request& req) {
  json body;
  try {
    body = json::parse(req.body);
  } catch (const json::exception& e) {
    bad_request(std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) bad_request("the request body must be a JSON object");
  return body;
}

std::vector<std::string> stop_list(const json& b, const char* key) {
  std::vector<std::string> out;
  if (!b.contains(key) || b[key].is_null()) return out;
  const json& s = b[key];
  if (s.is_string()) { out.push_back(s.get<std::string>()); return out; }
  if (!s.is_array()) bad_request(std::string("'") + key + "' must be a string or an array of strings");
  for (const auto& x : s) {
    if (!x.is_string()) bad_request(std::string("'") + key + "' must be a string or an array of strings");
    out.push_back(x.get<std::string>());
  }
  if (out.size() > 16) bad_request(std::string("at most 16 '") + key + "' strings");
  return out;
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t unix_now() { return (int64_t)std::time(nullptr); }

// Bytes of a string as a JSON array (OpenAI logprobs' "bytes").
json bytes_of(const std::string& s) {
  json a = json::array();
  for (unsigned char c : s) a.push_back((int)c);
  return a;
}

// Text content of an OpenAI/Ollama message: a string, or an array of parts
// of which the text ones are joined.
std::string message_text(const json& m) {
  if (!m.contains("content") || m["content"].is_null()) return "";
  const json& c = m["content"];
  if (c.is_string()) return c.get<std::string>();
  if (c.is_array()) {
    std::string out;
    for (const auto& p : c) {
      if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) bad_request("each content part must be an object with a 'type'");
      if (p["type"] == "text") {
        if (!p.contains("text") || !p["text"].is_string()) bad_request("a text content part needs a string 'text'");
        out += p["text"].get<std::string>();
      } else {
        bad_request("content part type '" + p["type"].get<std::string>() + "' is not supported (text only)");
      }
    }
    return out;
  }
  bad_request("'content' must be a string or an array of content parts");
}

ojson chat_messages(const json& b) {
  if (!b.contains("messages")) bad_request("'messages' is required");
  const json& ms = b["messages"];
  if (!ms.is_array() || ms.empty()) bad_request("'messages' must be a non-empty array");
  ojson out = ojson::array();
  for (const auto& m : ms) {
    if (!m.is_object()) bad_request("each message must be an object");
    if (!m.contains("role") || !m["role"].is_string()) bad_request("each message needs a string 'role'");
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" && role != "developer")
      bad_request("unknown message role '" + role + "'");
    out.push_back({{"role", role == "developer" ? "system" : role}, {"content", message_text(m)}});
  }
  return out;
}

// "5m", "1h30m", "300", "2.5s", "-1", "0".
Result<double> parse_duration(const std::string& s) {
  if (s.empty()) return Status::error("empty duration");
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  double total = 0;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-') { neg = true; i = 1; }
  bool any = false;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && (std::isdigit((unsigned char)s[j]) || s[j] == '.')) ++j;
    if (j == i) return Status::error("bad duration '" + s + "'");
    double v = std::stod(s.substr(i, j - i));
    size_t k = j;
    while (k < s.size() && std::isalpha((unsigned char)s[k])) ++k;
    std::string unit = s.substr(j, k - j);
    double mul = unit == "h" ? 3600 : unit == "m" ? 60 : unit == "s" ? 1 : unit == "ms" ? 0.001 : -1;
    if (mul < 0) return Status::error("bad duration unit in '" + s + "'");
    total += v * mul;
    any = true;
    i = k;
  }
  if (!any) return Status::error("bad duration '" + s + "'");
  return neg ? -total : total;
}

// Renders a conversation with the model's template; BOS only when the
// template did not write it.
std::vector<int32_t> chat_tokens(const LoadedModel& m, const ojson& messages) {
  const Tokenizer& tok = m.sched->tokenizer();
  ChatContext c;
  c.messages = messages;
  c.add_generation_prompt = true;
  c.bos_token = tok.bos() >= 0 ? tok.token_text(tok.bos()) : "";
  c.eos_token = tok.eos() >= 0 ? tok.token_text(tok.eos()) : "";
  auto text = m.tmpl->render(make_chat_context(c));
  if (!text) bad_request("chat template: " + text.error());
  bool has_bos = !c.bos_token.empty() && text->rfind(c.bos_token, 0) == 0;
  return tok.tokenize(*text, !has_bos, true);
}

// Fits the prompt in the context: a clear 400, or with `truncate` the last
// tokens (after BOS) that leave room for at least a few new ones.
void fit_context(std::vector<int32_t>& prompt, const LoadedModel& m, bool truncate) {
  const int n_ctx = m.sched->n_ctx();
  if ((int)prompt.size() < n_ctx) return;
  if (!truncate)
    throw ApiError{400, format("the prompt is %d tokens but the model's context holds %d; shorten it or send \"truncate\": true",
                               (int)prompt.size(), n_ctx), "invalid_request_error", "context_length_exceeded"};
  const int keep = std::max(1, n_ctx * 3 / 4);
  const Tokenizer& tok = m.sched->tokenizer();
  std::vector<int32_t> out;
  bool bos = !prompt.empty() && prompt[0] == tok.bos();
  if (bos) out.push_back(prompt[0]);
  out.insert(out.end(), prompt.end() - (keep - (int)out.size()), prompt.end());
  prompt = std::move(out);
}

std::shared_ptr<GenRequest> make_request(const GenSpec& g, std::vector<int32_t> prompt, const LoadedModel& m) {
  auto r = std::make_shared<GenRequest>();
  const Tokenizer& tok = m.sched->tokenizer();
  if (prompt.empty()) prompt.push_back(tok.bos() >= 0 ? tok.bos() : tok.eos());
  r->strip_leading_space = prompt.size() == 1 && prompt[0] == tok.bos() && tok.model() == "llama";
  r->prompt = std::move(prompt);
  r->n_predict = (int)std::min<int64_t>(g.n_predict, INT32_MAX);
  r->sampling = g.sp;
  r->stop = g.stop;
  r->n_logprobs = g.n_logprobs;
  r->json = g.schema;
  return r;
}

void submit_or_throw(LoadedModel& m, const std::shared_ptr<GenRequest>& r) {
  if (!m.sched->submit(r))
    throw ApiError{503, "the server is busy (the request queue is full); retry later", "server_error", "queue_full"};
}

// OpenAI sampling fields.
GenSpec openai_spec(const json& b, bool chat) {
  GenSpec g;
  g.model = field<std::string>(b, "model", "");
  g.stream = field<bool>(b, "stream", false);
  if (b.contains("stream_options") && !b["stream_options"].is_null()) {
    if (!b["stream_options"].is_object()) bad_request("'stream_options' must be an object");
    g.include_usage = field<bool>(b["stream_options"], "include_usage", false);
  }
  g.n_predict = field<int64_t>(b, "max_tokens", -1);
  g.n_predict = field<int64_t>(b, "max_completion_tokens", g.n_predict);
  if (g.n_predict < -1 || g.n_predict == 0) bad_request("'max_tokens' must be a positive integer");
  g.sp.temperature = (float)field<double>(b, "temperature", 1.0);
  if (g.sp.temperature < 0 || g.sp.temperature > 2) bad_request("'temperature' must be between 0 and 2");
  g.sp.top_p = (float)field<double>(b, "top_p", 1.0);
  if (g.sp.top_p <= 0 || g.sp.top_p > 1) bad_request("'top_p' must be in (0, 1]");
  g.sp.top_k = 0;
  g.sp.min_p = 0;
  g.sp.presence_penalty = (float)field<double>(b, "presence_penalty", 0.0);
  g.sp.frequency_penalty = (float)field<double>(b, "frequency_penalty", 0.0);
  int64_t seed = field<int64_t>(b, "seed", -1);
  if (seed >= 0) g.sp.seed = (uint64_t)seed;
  if (field<int64_t>(b, "n", 1) != 1) bad_request("only 'n': 1 is supported");
  g.stop = stop_list(b, "stop");
  if (chat) {
    if (field<bool>(b, "logprobs", false)) {
      g.n_logprobs = (int)field<int64_t>(b, "top_logprobs", 0);
      if (g.n_logprobs < 0 || g.n_logprobs > 20) bad_request("'top_logprobs' must be between 0 and 20");
    } else if (b.contains("top_logprobs") && !b["top_logprobs"].is_null()) {
      bad_request("'top_logprobs' needs 'logprobs': true");
    }
  } else {
    int64_t lp = field<int64_t>(b, "logprobs", -1);
    if (lp > 5 || lp < -1) bad_request("'logprobs' must be between 0 and 5");
    g.n_logprobs = (int)lp;
  }
  if (b.contains("response_format")) {
    auto s = schema_from_response_format(b["response_format"]);
    if (!s) bad_request(s.error());
    g.schema = *s;
  }
  g.truncate = field<bool>(b, "truncate", false);
  return g;
}

// Ollama options.
GenSpec ollama_spec(const json& b) {
  GenSpec g;
  g.model = field<std::string>(b, "model", "");
  g.stream = field<bool>(b, "stream", true);
  if (b.contains("format")) {
    auto s = schema_from_ollama_format(b["format"]);
    if (!s) bad_request(s.error());
    g.schema = *s;
  }
  if (b.contains("keep_alive") && !b["keep_alive"].is_null()) {
    const json& k = b["keep_alive"];
    if (k.is_number()) g.keep_alive_s = k.get<double>();
    else if (k.is_string()) {
      auto d = parse_duration(k.get<std::string>());
      if (!d) bad_request("'keep_alive': " + d.error());
      g.keep_alive_s = *d;
    } else bad_request("'keep_alive' must be a duration string or a number of seconds");
    if (g.keep_alive_s < 0) g.keep_alive_s = -1;
  }
  g.truncate = field<bool>(b, "truncate", false);
  if (b.contains("options") && !b["options"].is_null()) {
    const json& o = b["options"];
    if (!o.is_object()) bad_request("'options' must be an object");
    g.sp.temperature = (float)field<double>(o, "temperature", g.sp.temperature);
    g.sp.top_k = (int)field<int64_t>(o, "top_k", g.sp.top_k);
    g.sp.top_p = (float)field<double>(o, "top_p", g.sp.top_p);
    g.sp.min_p = (float)field<double>(o, "min_p", 0.0);
    g.sp.repeat_penalty = (float)field<double>(o, "repeat_penalty", 1.0);
    g.sp.penalty_last_n = (int)field<int64_t>(o, "repeat_last_n", 64);
    g.sp.presence_penalty = (float)field<double>(o, "presence_penalty", 0.0);
    g.sp.frequency_penalty = (float)field<double>(o, "frequency_penalty", 0.0);
    int64_t seed = field<int64_t>(o, "seed", -1);
    if (seed >= 0) g.sp.seed = (uint64_t)seed;
    g.n_predict = field<int64_t>(o, "num_predict", -1);
    if (g.n_predict < -2) bad_request("'num_predict' must be -1 or more");
    if (g.n_predict == -2) g.n_predict = -1;
    g.stop = stop_list(o, "stop");
    if (g.sp.temperature < 0) bad_request("'temperature' must not be negative");
  }
  return g;
}

json usage_json(const GenRequest& r) {
  return {{"prompt_tokens", r.n_prompt}, {"completion_tokens", r.n_gen}, {"total_tokens", r.n_prompt + r.n_gen},
          {"prompt_tokens_details", {{"cached_tokens", r.n_cached}}}};
}

json chat_logprobs(const std::vector<TokenLogprob>& lps) {
  json content = json::array();
  for (const auto& lp : lps) {
    json top = json::array();
    for (const auto& [t, l] : lp.top) top.push_back({{"token", t}, {"logprob", l}, {"bytes", bytes_of(t)}});
    content.push_back({{"token", lp.text}, {"logprob", lp.logprob}, {"bytes", bytes_of(lp.text)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

json completion_logprobs(const std::vector<TokenLogprob>& lps, size_t text_offset) {
  json tokens = json::array(), token_lps = json::array(), tops = json::array(), offsets = json::array();
  for (const auto& lp : lps) {
    tokens.push_back(lp.text);
    token_lps.push_back(lp.logprob);
    json t = json::object();
    for (const auto& [s, l] : lp.top) t[s] = l;
    tops.push_back(t);
    offsets.push_back(text_offset);
    text_offset += lp.text.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

std::string openai_finish(const std::string& reason) { return reason == "length" ? "length" : "stop"; }


// Streams a request's chunks: `emit_chunk` writes one piece, `emit_end` the
// final records. A failed write (client gone) cancels the request.
void stream_response(httplib::Response& res, const char* content_type, std::shared_ptr<StreamState> st,
                     std::function<std::string(StreamState&, const GenChunk&)> emit_chunk,
                     std::function<std::string(StreamState&)> emit_end) {
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      content_type,
      [st, emit_chunk, emit_end](size_t, httplib::DataSink& sink) -> bool {
        if (!st->started) {
          st->started = true;
          std::string head = emit_chunk(*st, GenChunk{});  // e.g. the role delta
          if (!head.empty() && !sink.write(head.data(), head.size())) { st->sched->cancel(st->req); return false; }
        }
        GenChunk c;
        while (true) {
          bool more = st->req->next(c, std::chrono::milliseconds(250));
          if (!more) {
            std::string tail = emit_end(*st);
            st->finished = true;
            if (!tail.empty() && !sink.write(tail.data(), tail.size())) return false;
            sink.done();
            return true;
          }
          if (c.text.empty() && c.logprobs.empty()) {
            if (!sink.is_writable()) { st->sched->cancel(st->req); return false; }
            continue;
          }
          std::string out = emit_chunk(*st, c);
          if (out.empty()) continue;
          if (!sink.write(out.data(), out.size())) { st->sched->cancel(st->req); return false; }
          return true;
        }
      },
      [st](bool) {
        if (!st->finished) st->sched->cancel(st->req);
      });
}

std::string sse(const json& j) { return "data: " + j.dump() + "\n\n"; }

json model_details(const std::string& path) {
  json d = {{"format", "gguf"}, {"family", ""}, {"parameter_size", ""}, {"quantization_level", ""}};
  auto info = describe_gguf(path);
  if (info) {
    d["family"] = info->architecture;
    d["families"] = json::array({info->architecture});
    double p = (double)info->parameters;
    d["parameter_size"] = p >= 1e9 ? format("%.1fB", p / 1e9) : p >= 1e6 ? format("%.1fM", p / 1e6) : format("%.1fK", p / 1e3);
    d["quantization_level"] = info->quant;
  }
  return d;
}

}  // namespace slim

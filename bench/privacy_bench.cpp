// Privacy guard throughput on ~1 MB of generated mixed text (English prose,
// code, log lines, dates, prices, versions, with PII and secrets sprinkled
// in, about one value every 300 bytes):
//   redact/mixed       Redaction::redact() with a fresh Redaction; bytes_per_second = input
//   find/mixed         Detector::find() alone
//   redact/clean       the same text without any PII (the common case)
//   restore/stream     StreamRestorer over the redacted text in 16-byte chunks
// Built as build/bench/privacy_bench.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "privacy/redact.h"

namespace {

using slim::privacy::Detector;
using slim::privacy::Redaction;
using slim::privacy::StreamRestorer;

const char* const kProse[] = {
    "The quarterly report shows that revenue grew by 12% while costs stayed flat. ",
    "Please review the attached draft before Thursday's meeting at 10:30. ",
    "We upgraded the cluster to version 2.4.1 and the latency dropped to 35 ms. ",
    "In 2023 the team shipped 14 releases, see ticket PROJ-4821 for details. ",
    "The invoice total is $1,249.99 including tax, due on 2024-03-15. ",
    "Could you summarize the main arguments of the paper in three bullet points? ",
    "for (int i = 0; i < n; ++i) { sum += values[i] * weights[i]; }\n",
    "2024-05-01T12:00:03Z INFO request id=7f3a9c2e took 120ms status=200\n",
    "Commit a94a8fe5ccb19ba61c4c0873d391e987982fbbd3 fixed the race in the scheduler. ",
    "The recipe needs 250 g of flour, 2 eggs and 100 ml of milk. ",
    "Set the background to #ff5733 and the border to 1px solid #333. ",
    "ISBN 978-3-16-148410-0 is cited on page 42 of the second edition. ",
    "Our office moved to the third floor; the old keycards stop working on Monday. ",
    "The model was trained for 3 epochs with a learning rate of 0.0003. ",
};

const char* const kPii[] = {
    "Email john.doe@example.com about the invoice. ",
    "Call me on +44 20 7946 0958 after six. ",
    "My US number is (415) 555-2671. ",
    "Card 4111 1111 1111 1111 exp 12/27. ",
    "Wire it to DE89 3704 0044 0532 0130 00 please. ",
    "SSN 123-45-6789 is on the form. ",
    "The server at 192.168.10.24 refuses connections. ",
    "Ping 2001:db8:85a3::8a2e:370:7334 from the bastion. ",
    "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n",
    "password=correct-horse-battery-staple\n",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\n",
    "git clone https://alice:s3cret@git.example.org/team/repo.git\n",
    "NI number AB123456C on file. ",
};

// ~1 MiB of prose with (with_pii) a value every ~4 sentences; deterministic.
std::string mixed_text(bool with_pii) {
  std::mt19937 rng(42);
  std::string text;
  const size_t np = std::size(kProse), nv = std::size(kPii);
  while (text.size() < (1u << 20)) {
    text += kProse[rng() % np];
    if (with_pii && rng() % 4 == 0) text += kPii[rng() % nv];
    if (rng() % 8 == 0) text += "\n\n";
  }
  return text;
}

std::shared_ptr<const Detector> detector() {
  static auto d = Detector::create({});
  if (!d) {
    std::fprintf(stderr, "privacy rules: %s\n", d.error().c_str());
    std::exit(1);
  }
  return *d;
}

void BM_redact(benchmark::State& st, bool with_pii) {
  const std::string text = mixed_text(with_pii);
  auto d = detector();
  size_t values = 0;
  for (auto _ : st) {
    Redaction r(d);
    std::string out = r.redact(text);
    benchmark::DoNotOptimize(out.data());
    values = 0;
    for (const auto& [cat, n] : r.counts()) values += n;
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(text.size()));
  st.counters["distinct_values"] = static_cast<double>(values);
}

void BM_find(benchmark::State& st) {
  const std::string text = mixed_text(true);
  auto d = detector();
  size_t n = 0;
  for (auto _ : st) {
    auto found = d->find(text);
    n = found.size();
    benchmark::DoNotOptimize(found.data());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(text.size()));
  st.counters["findings"] = static_cast<double>(n);
}

void BM_restore_stream(benchmark::State& st) {
  const std::string text = mixed_text(true);
  Redaction r(detector());
  const std::string redacted = r.redact(text);
  for (auto _ : st) {
    StreamRestorer s(r);
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < redacted.size(); i += 16) out += s.push(std::string_view(redacted).substr(i, 16));
    out += s.finish();
    benchmark::DoNotOptimize(out.data());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(redacted.size()));
}

BENCHMARK_CAPTURE(BM_redact, mixed, true)->Name("redact/mixed")->Unit(benchmark::kMillisecond);
BENCHMARK(BM_find)->Name("find/mixed")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_redact, clean, false)->Name("redact/clean")->Unit(benchmark::kMillisecond);
BENCHMARK(BM_restore_stream)->Name("restore/stream")->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

# Routing overhead: python3 tests/route/bench_overhead.py SLIM MODEL chat|completions N MAX_TOKENS THREADS
# A fresh `slim serve` per mode (the model by name, then `auto` under local-only with an unreachable
# remote, so the signals are computed but nothing leaves), the same requests in the same order, each
# prompt once; prints the mean and median latency of each and the overhead of routing.
import json, sys, time, urllib.request, statistics, subprocess, os
binary, model, route_path, n, max_tokens, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
rows = [json.loads(l)["prompt"] for l in open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "routing-eval.jsonl"))]
prompts = (rows * 10)[:n]
prompts = [p + f" ({i})" for i, p in enumerate(prompts)]  # each prompt once
def serve(port):
    env = dict(os.environ, SLIM_HOME=os.environ.get("SLIM_HOME", "/tmp/slim-route-bench"))
    p = subprocess.Popen([binary, "serve", "-m", model, "--port", str(port), "-t", threads, "-c", "1024", "--parallel", "1",
                          "--remote-url", "http://127.0.0.1:9/v1", "--remote-model", "none", "--policy", "local-only"],
                         env=env, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try: urllib.request.urlopen(f"http://127.0.0.1:{port}/health"); break
        except Exception: time.sleep(0.05)
    return p
def post(port, model_name, p):
    if route_path == "chat":
        body = {"model": model_name, "messages": [{"role": "user", "content": p}]}
        url = "/v1/chat/completions"
    else:
        body = {"model": model_name, "prompt": p}
        url = "/v1/completions"
    body.update({"max_tokens": max_tokens, "temperature": 0})
    t = time.perf_counter()
    r = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{url}", json.dumps(body).encode(), {"Content-Type": "application/json"}))
    j = json.loads(r.read())
    return time.perf_counter() - t, j
res = {}
name = os.path.splitext(os.path.basename(model))[0]
for mode, port in (("local", 18701), ("auto", 18702)):
    srv = serve(port)
    for p in ["warm up one", "warm up two"]: post(port, name if mode == "local" else "auto", p)
    times, sig = [], []
    for p in prompts:
        t, j = post(port, name if mode == "local" else "auto", p)
        times.append(t)
        if mode == "auto": sig.append(j["x_slim"]["route"]["signals"]["ms"])
    srv.terminate(); srv.wait()
    res[mode] = (statistics.median(times), statistics.mean(times), sig)
ml, ma = res["local"][1], res["auto"][1]
print(json.dumps({"path": route_path, "requests": n, "max_tokens": max_tokens, "mean_local_ms": round(ml*1e3, 2), "mean_auto_ms": round(ma*1e3, 2),
                  "median_local_ms": round(res["local"][0]*1e3, 2), "median_auto_ms": round(res["auto"][0]*1e3, 2),
                  "overhead_pct_mean": round((ma-ml)/ml*100, 2), "median_signal_ms": round(statistics.median(res["auto"][2]), 2)}))

# Aggregate generated tokens/s with N concurrent streaming clients.
import json, sys, threading, time, urllib.request
port, n_clients, n_tok = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
counts = [0]*n_clients
def go(i):
    body = {"prompt": "Once upon a time %d" % i, "max_tokens": n_tok, "temperature": 0, "stream": False}
    req = urllib.request.Request("http://127.0.0.1:%d/v1/completions" % port, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    counts[i] = json.load(urllib.request.urlopen(req, timeout=600))["usage"]["completion_tokens"]
t0 = time.time()
ts = [threading.Thread(target=go, args=(i,)) for i in range(n_clients)]
[t.start() for t in ts]; [t.join() for t in ts]
dt = time.time() - t0
print("%d clients: %d tokens in %.2fs = %.0f tok/s" % (n_clients, sum(counts), dt, sum(counts)/dt))

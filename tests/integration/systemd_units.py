# systemd_units.py: the units verify cleanly, their security exposure is
# printed, and each unit's ExecStart line, run by this test with a
# NOTIFY_SOCKET the test owns, sends READY=1 and stops cleanly on SIGTERM.
# systemd itself is never started (PID 1 here is not systemd).
import os, re, shutil, signal, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import taplib  # noqa: E402
from taplib import ok  # noqa: E402

root = os.environ.get("FP_ROOT", os.getcwd())
fpbin = os.environ.get("FP_BIN", os.path.join(root, "bin"))
tmp = tempfile.mkdtemp(prefix="fp-units-")
units = sorted(f for f in os.listdir(os.path.join(root, "systemd")) if f.endswith((".service", ".target")))
ok(len([u for u in units if u.endswith(".service")]) == 7 and "fedpipe.target" in units, "one unit per stage and a target")

# The stage table (fedctl stages) names exactly the stages with a unit, and
# the committed units are what systemd/gen.sh makes from it, byte for byte.
r = subprocess.run([os.path.join(fpbin, "fedctl"), "stages"], capture_output=True, text=True)
table = r.stdout.split()
ok(r.returncode == 0 and sorted("fedpipe-%s.service" % t for t in table) ==
   [u for u in units if u.endswith(".service")], "fedctl stages lists exactly the stages with a unit: %s" % " ".join(table))
gdir = os.path.join(tmp, "gen")
shutil.copytree(os.path.join(root, "systemd"), gdir)
r = subprocess.run(["sh", os.path.join(gdir, "gen.sh")], env=dict(os.environ, FEDCTL=os.path.join(fpbin, "fedctl")),
                   capture_output=True, text=True)
same = all(open(os.path.join(gdir, u), "rb").read() == open(os.path.join(root, "systemd", u), "rb").read()
           for u in units)
ok(r.returncode == 0 and same, "systemd/gen.sh regenerates the committed units byte for byte" + (": " + r.stderr.strip() if r.stderr else ""))

# served's file limit sits above its connection cap (plus the store's and
# stages' descriptors): a flood meets the cap, never EMFILE.
st = open(os.path.join(root, "systemd", "fedpipe-served.service")).read()
m = re.search(r"^LimitNOFILE=(\d+)$", st, re.M)
d = re.search(r'"max_connections",\s*"(\d+)"', open(os.path.join(root, "common", "core", "params_served.c")).read())
ok(m is not None and d is not None and int(m.group(1)) >= int(d.group(1)) + 64,
   "served unit: LimitNOFILE (%s) above max_connections (%s) + 64" % (m and m.group(1), d and d.group(1)))

udir = os.path.join(tmp, "units")
os.mkdir(udir)
for u in units:
    text = open(os.path.join(root, "systemd", u)).read().replace("/usr/local/bin/", fpbin + "/")
    open(os.path.join(udir, u), "w").write(text)

have_analyze = shutil.which("systemd-analyze") is not None
if have_analyze:
    r = subprocess.run(["systemd-analyze", "verify"] + units, cwd=udir, capture_output=True, text=True)
    ok(r.returncode == 0 and r.stderr.strip() == "", "systemd-analyze verify: empty stderr" + ("" if not r.stderr else ": " + r.stderr.strip()[:300]))
    for u in units:
        if not u.endswith(".service"):
            continue
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", u], cwd=udir, capture_output=True, text=True)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", r.stdout)
        print("# %s exposure: %s" % (u, m.group(1) + " " + m.group(2) if m else "unknown"))
        ok(m is not None and float(m.group(1)) <= 3.0, "%s exposure <= 3.0 (%s)" % (u, m.group(1) if m else "?"))
else:
    taplib.skip("systemd-analyze missing")

# A node to run the ExecStart lines against.
node = os.path.join(tmp, "node")
os.makedirs(os.path.join(node, "state")); os.makedirs(os.path.join(node, "run"))
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
conf = os.path.join(node, "fedpipe.conf")
open(conf, "w").write("[node]\nserver_name = units.test:%d\nstate_dir = %s/state\nrun_dir = %s/run\n"
                      "signing_key = %s/signing.key\nlisten = 127.0.0.1:%d\n" % (port, node, node, node, port))
subprocess.run([os.path.join(fpbin, "fedctl"), "-c", conf, "keygen"], capture_output=True)

for u in units:
    if not u.endswith(".service"):
        continue
    text = open(os.path.join(udir, u)).read()
    m = re.search(r"^ExecStart=(.*)$", text, re.M)
    argv = m.group(1).replace("/etc/fedpipe/fedpipe.conf", conf).split()
    if not os.access(argv[0], os.X_OK):
        ok(False, "%s: %s is not built" % (u, argv[0]))
        continue
    sockpath = os.path.join(tmp, "notify-%s.sock" % u)
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(sockpath)
    ns.settimeout(0.5)
    env = dict(os.environ, NOTIFY_SOCKET=sockpath, WATCHDOG_USEC="2000000")
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    got, deadline = [], time.time() + 20
    while time.time() < deadline and not any("READY=1" in g for g in got):
        try:
            got.append(ns.recv(4096).decode())
        except socket.timeout:
            if p.poll() is not None:
                break
    ok(any("READY=1" in g for g in got), "%s: READY=1 on the NOTIFY_SOCKET" % u)
    # Watchdog pings arrive every WATCHDOG_USEC/2.
    wd, deadline = False, time.time() + 5
    while time.time() < deadline and not wd and p.poll() is None:
        try:
            wd = "WATCHDOG=1" in ns.recv(4096).decode()
        except socket.timeout:
            pass
    ok(wd, "%s: watchdog pings" % u)
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill(); rc = "hung"
    err = p.stderr.read().decode(errors="replace")
    ok(rc == 0, "%s: clean exit 0 on SIGTERM (got %s)" % (u, rc))
    if rc != 0:
        print("# " + err[-800:].replace("\n", "\n# "))
    ok(all(re.match(r"^<[0-7]>", l) for l in err.splitlines() if l), "%s: every log line has a syslog priority prefix" % u)
    ns.close()

shutil.rmtree(tmp, ignore_errors=True)
sys.exit(taplib.done())

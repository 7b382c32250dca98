"""bench/RESULTS.md from the figures of bench/run.py: the targets of issue 9 (medians,
ratio, met or not), every figure as min / median / max, the machine's limits and the
table of bench/logins.py. A "## Profiles" section already in the file is kept."""

import datetime
import os
import re
import statistics
import subprocess

from _common import fmt_size, machine_line

PROFILES = "## Profiles"


def _get(r, path):
    for k in path.split("."):
        if not isinstance(r, dict) or r.get(k) is None:
            return None
        r = r[k]
    return r


def _diff(r, a, b):
    x, y = _get(r, f"peaks.{a}"), _get(r, f"peaks.{b}")
    return None if x is None or y is None else x - y


def figures(args):
    """(key, label, unit, getter) for every figure of a server round."""
    size, big = fmt_size(args.size), fmt_size(args.big)
    par = f"{args.parallel} × {args.parallel_blobs} × {fmt_size(args.parallel_size)}"
    g = lambda path: (lambda r: _get(r, path))  # noqa: E731
    return [
        ("mono", f"{size} monolithic PUT", "MB/s", g("mono.mbs")),
        ("chunked", f"{size} in {fmt_size(args.chunk)} Content-Range PATCHes", "MB/s", g("chunked.mbs")),
        ("streamed", f"{size} streamed PATCH", "MB/s", g("streamed.mbs")),
        ("big", f"{big} streamed PATCH", "MB/s", g("big.mbs")),
        ("pull", f"{size} pull (median of 3 GETs)", "MB/s", g("pull.mbs")),
        ("parallel", f"{par} parallel pushes", "MB/s", g("parallel.mbs")),
        ("failed", "failed requests", "count", g("failed")),
        ("get", "manifest GET by tag, 64 conns", "req/s", g("manifests.get.rps")),
        ("get_p99", "manifest GET p99", "ms", g("manifests.get.p99_ms")),
        ("get_hey", "manifest GET by tag, 64 conns (hey)", "req/s", g("manifests.get_hey.rps")),
        ("get_hey_p99", "manifest GET p99 (hey)", "ms", g("manifests.get_hey.p99_ms")),
        ("head", "manifest HEAD by tag, 64 conns (hey)", "req/s", g("manifests.head.rps")),
        ("head_p99", "manifest HEAD p99 (hey)", "ms", g("manifests.head.p99_ms")),
        ("tags", f"{args.tags} tags created ({args.tag_conns} conns)", "tags/s", g("tags.rate")),
        ("tags_full", f"full tag list ({args.tags} tags)", "ms", g("tags.full_ms")),
        ("page_small", f"one page (n=100) at {max(2, args.tags // 10 // 2 * 2)} tags", "ms", g("tags.page_small_ms")),
        ("page_big", f"one page (n=100) at {args.tags} tags", "ms", g("tags.page_big_ms")),
        ("logins_distinct", f"{args.logins} concurrent logins, distinct users", "s", g("logins.distinct.seconds")),
        ("logins_same", f"{args.logins} concurrent logins, one user", "s", g("logins.same.seconds")),
        ("rss_start", "RSS at start (after one token)", "MiB", g("rss_start")),
        ("peak", "peak RSS over the whole run", "MiB", g("peak")),
        ("rss_after", "RSS after the load", "MiB", g("rss_after")),
        ("peak_logins", f"peak RSS, {args.logins} concurrent logins", "MiB", g("peaks.logins")),
        ("peak_one", f"peak RSS, 1 upload ({size} streamed)", "MiB", g("peaks.streamed")),
        ("peak_big", f"peak RSS, 1 upload ({big} streamed)", "MiB", g("peaks.big")),
        ("peak_par", f"peak RSS, {args.parallel} parallel uploads", "MiB", g("peaks.parallel")),
        ("peak_manifests", "peak RSS, manifest GET/HEAD", "MiB", g("peaks.manifests")),
        ("peak_tags", "peak RSS, tags", "MiB", g("peaks.tags")),
        ("par_minus_one", f"peak RSS {args.parallel} uploads − 1 upload", "MiB", lambda r: _diff(r, "parallel", "streamed")),
        ("big_minus_one", f"peak RSS {big} − {size} upload", "MiB", lambda r: _diff(r, "big", "streamed")),
        ("after_minus_start", "RSS after the load − at start", "MiB",
         lambda r: None if r.get("rss_after") is None else r["rss_after"] - r["rss_start"]),
    ]


def _stats(values):
    v = [x for x in values if x is not None]
    return (min(v), statistics.median(v), max(v)) if v else None


def _f(v, unit=""):
    if v is None:
        return "–"
    if unit in ("ms", "s"):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.0f}"
    if unit == "MiB":
        return f"{v:.1f}"
    return f"{v:,.0f}"


def _ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b not in (None, 0) else "–"


def logins_row(text, phase):
    """A row of logins.py's table as {column: value}, read by the columns of its dashes line."""
    lines = text.splitlines()
    for i, line in enumerate(lines[1:], 1):
        if set(line.replace(" ", "")) == {"-"}:
            spans = [(m.start(), m.end()) for m in re.finditer(r"-+", line)]
            head = [lines[i - 1][spans[j - 1][1] if j else 0:b].strip() for j, (a, b) in enumerate(spans)]
            for row in lines[i + 1:]:
                cells = [row[spans[j - 1][1] if j else 0:b].strip() for j, (a, b) in enumerate(spans)]
                if cells and cells[0] == phase:
                    return dict(zip(head, cells))
    return None


def _num(text):
    m = re.search(r"[\d.]+", text or "")
    return float(m.group(0)) if m else None


def targets(args, med, lim, logins_text, failed):
    """Rows: figure, berth, Distribution, ratio, target, met. `failed`: requests failed per
    server over all rounds."""
    rows = []

    def row(label, key, target, ok, unit=None, b=None, d=None):
        b = med("berth", key) if b is None and key else b
        d = med("distribution", key) if d is None and key else d
        unit = unit or ""
        met = "–" if ok is None or b is None else ("yes" if ok(b, d) else "**no**")
        rows.append([label, f"{_f(b, unit)} {unit}".strip(), f"{_f(d, unit)} {unit}".strip() if d is not None else "–",
                     _ratio(b, d), target, met])

    floor = None
    if lim.get("sha256") and lim.get("dd"):
        floor = 0.9 * min(lim["sha256"], lim["dd"])
    peak_d = med("distribution", "peak")
    size = fmt_size(args.size)
    row("peak RSS over the whole run", "peak", "≤ Distribution's", lambda b, d: d is not None and b <= d, "MiB")
    row(f"peak RSS, {args.logins} concurrent Basic-auth logins", "peak_logins", "≤ Distribution's whole-run peak",
        lambda b, d: peak_d is not None and b <= peak_d, "MiB")
    row(f"peak RSS {args.parallel} uploads − 1 upload", "par_minus_one", "≤ 16 MiB", lambda b, d: b <= 16, "MiB")
    row(f"peak RSS {fmt_size(args.big)} − {size} upload", "big_minus_one", "≤ 4 MiB", lambda b, d: b <= 4, "MiB")
    row("RSS after the load − at start", "after_minus_start", "near the start (≤ 8 MiB, my reading)",
        lambda b, d: b <= 8, "MiB")
    if floor:
        tgt = f"≥ 90 % of min(sha256, fdatasync) = {floor:,.0f}"
        if lim.get("receiver"):
            tgt += f" (a bare receiver here: {lim['receiver']:,.0f})"
    else:
        tgt = "≥ 90 % of min(sha256, fdatasync)"
    row(f"{size} monolithic PUT", "mono", tgt, floor and (lambda b, d: b >= floor), "MB/s")
    row(f"{size} streamed PATCH", "streamed", tgt, floor and (lambda b, d: b >= floor), "MB/s")
    row(f"{size} in {fmt_size(args.chunk)} Content-Range PATCHes", "chunked", "≥ 1.5 × Distribution",
        lambda b, d: d is not None and b >= 1.5 * d, "MB/s")
    row(f"{args.parallel} parallel pushes of {fmt_size(args.parallel_size)}", "parallel", "≥ 1.5 × Distribution",
        lambda b, d: d is not None and b >= 1.5 * d, "MB/s")
    row("failed requests (all rounds)", None, "0", lambda b, d: b == 0, "",
        b=failed.get("berth"), d=failed.get("distribution"))
    ceiling = lim.get("sendfile")
    row(f"{size} pull", "pull", f"≥ 90 % of sendfile GET = {0.9 * ceiling:,.0f}" if ceiling else "≥ 90 % of sendfile GET",
        ceiling and (lambda b, d: b >= 0.9 * ceiling), "MB/s")
    row("manifest GET by tag, 64 conns (wrk)", "get", "≥ 18,000", lambda b, d: b >= 18000, "req/s")
    row("manifest GET p99 (wrk)", "get_p99", "≤ 5", lambda b, d: b <= 5, "ms")
    row("manifest HEAD by tag, 64 conns (hey)", "head", "≥ 18,000", lambda b, d: b >= 18000, "req/s")
    floor = lim.get("hey_head_p99")
    row("manifest HEAD p99 (hey)", "head_p99", f"≤ 5 (nginx here: {floor:.1f})" if floor else "≤ 5",
        lambda b, d: b <= 5, "ms")
    row(f"{args.tags} tags created", "tags", "≥ 2,750", lambda b, d: b >= 2750, "tags/s")
    row("full tag list", "tags_full", "≤ Distribution's", lambda b, d: d is not None and b <= d, "ms")
    small, big = med("berth", "page_small"), med("berth", "page_big")
    row(f"one page (n=100) at {args.tags} tags", "page_big",
        f"O(page): ≤ 2 × the page at {args.tags // 10} tags ({_f(small, 'ms')} ms)",
        small and (lambda b, d: b <= 2 * small), "ms")
    warm = logins_row(logins_text, "warm (wrk)")
    rate = _num(warm.get("rate")) if warm else None
    row("Basic-auth tokens/s, credential cached (logins.py)", None, "≥ 5,000",
        rate and (lambda b, d: b >= 5000), "/s", b=rate)
    flood = logins_row(logins_text, "flood (valid)")
    if flood:
        ok = set(re.findall(r"(\d{3}):", flood.get("statuses", ""))) == {"200"}
        peak = _num(flood.get("peak RSS MiB"))
        row("flood of wrong passwords: valid users' statuses; peak RSS", None,
            "all 200; ≤ Distribution's whole-run peak",
            lambda b, d: ok and peak_d is not None and b <= peak_d, "MiB", b=peak)
        rows[-1][1] = f"{flood.get('statuses')}; {_f(peak, 'MiB')} MiB"
    return rows


def md_table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def render(args, kinds, rounds, lims, logins_text, logins_rc, cmd):
    figs = figures(args)
    by = {k: [r for r in rounds if r["server"] == k] for k in ("berth", "distribution")}
    getters = {key: fn for key, _, _, fn in figs}

    def stats(kind, key):
        return _stats([getters[key](r) for r in by[kind]])

    def med(kind, key):
        s = stats(kind, key)
        return s[1] if s else None

    failed = {k: sum(r["failed"] for r in rs) for k, rs in by.items() if rs}
    lim = {k: statistics.median([x[k] for x in lims if x.get(k)]) if any(x.get(k) for x in lims) else None
           for k in ("sha256", "dd", "receiver", "sendfile", "hey_head_p99", "hey_head_rps")}

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "log", "-1",
                           "--format=%h %s"], capture_output=True, text=True).stdout.strip()
    out = ["# Benchmark results (issue 9)", "",
           f"{date}. `{cmd}`: {args.rounds} round{'s' if args.rounds != 1 else ''}, the servers alternating "
           "(their order reversed every round).",
           f"Machine: {machine_line()}. Source tree: `{head}`.",
           f"Load average when the report was written: {os.getloadavg()[0]:.1f} (1 min), "
           f"{os.getloadavg()[2]:.1f} (15 min); other work on the machine makes the figures noisy.",
           "Each figure is the median over the rounds (min and max below). berth sends a bearer token with",
           "every request; Distribution 2.8.2 runs without auth. MB/s = 10^6 bytes/s.",
           "A shape's peak RSS starts from the RSS left by the shapes before it (VmHWM is reset",
           "to the current RSS), so a difference of two peaks can be negative.",
           "berth's settings: " + (", ".join(f"`{e}`" for e in args.berth_env) + ", otherwise the defaults"
                                   if args.berth_env else "the defaults") + ".", "",
           "## Targets", "",
           md_table(["figure", "berth (median)", "Distribution (median)", "ratio", "target (issue 9)", "met"],
                    targets(args, med, lim, logins_text, failed)), "",
           "## Machine limits (same run, median of the rounds)", "",
           md_table(["limit", "MB/s", "how"], [
               ["sha256, 16 KiB blocks, one core", _f(lim["sha256"]), f"`openssl speed -seconds {args.sha_secs} -evp sha256`"],
               [f"durable write, {fmt_size(args.size)}", _f(lim["dd"]),
                f"`dd if=/dev/zero of=FILE bs=1M count={args.size >> 20} conv=fdatasync` in the data dir's filesystem"],
               [f"bare receiver, {fmt_size(args.size)}", _f(lim["receiver"]),
                "the pushes' client sending to a receiver that only receives, hashes (OpenSSL, own thread), "
                "writes (own thread) and fdatasyncs; median of 3 (`limits.bare_receiver_mbs`)"],
               [f"loopback sendfile GET, {fmt_size(args.size)}", _f(lim["sendfile"]),
                "nginx (`sendfile on`, one worker) serving the dd file; median of 3 GETs, read as the pulls are"],
           ]), "",
           "The manifest shapes run the server on half the cores and wrk or hey on the other half "
           "(`_common.server_on_own_cores`; on 2 cores, one each), for both registries: sharing cores, "
           "the load generator set the tail latency itself (nginx serving a static file to hey on shared "
           "cores: p99 5.7–7.5 ms in earlier runs). "
           "For reference, split the same way: nginx (one worker) answering `hey -c 64 -m HEAD` for a 1 KiB "
           f"file, {args.wrk_secs} s: p99 {_f(lim['hey_head_p99'], 'ms')} ms at {_f(lim['hey_head_rps'], 'req/s')} req/s.", "",
           "## Every figure: min / median / max", ""]
    rows = []
    for key, label, unit, _ in figs:
        sb, sd = stats("berth", key), stats("distribution", key)
        if sb is None and sd is None:
            continue
        cell = lambda s: " / ".join(_f(x, unit) for x in s) if s else "–"  # noqa: E731
        rows.append([label, unit, cell(sb), cell(sd), _ratio(sb and sb[1], sd and sd[1])])
    out.append(md_table(["figure", "unit", "berth", "Distribution", "ratio of medians"], rows))
    out += ["", "## Logins (bench/logins.py, berth only, its own server)", "", "```", logins_text or "(not run)", "```"]
    if logins_rc:
        out.append(f"\nlogins.py exited with {logins_rc}.")
    errors = [f"- {r['server']} round {r['round']}: {e}" for r in rounds for e in r["errors"]]
    if errors:
        out += ["", "## Failures", ""] + [e.splitlines()[0] for e in errors]
    return "\n".join(out) + "\n"


def write(path, doc):
    """Writes `doc`, followed by the "## Profiles" section of the file already there."""
    keep = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        i = old.find("\n" + PROFILES)
        if i >= 0:
            keep = old[i:]
    with open(path, "w") as f:
        f.write(doc + keep)

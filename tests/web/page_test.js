// tally-collector's page in a real browser (Debian's chromium, driven by
// puppeteer-core): a collector with known data, each page opened as a
// person would, the known top process and the known gap looked for on the
// screen, the console checked for errors, the read token asked for, and a
// week of a 100-host fleet loaded in under a second.
//
//   COLLECTOR=build/userspace/collector/tally-collector \
//   SERIES_BENCH=build/bench/series_bench node tests/web/page_test.js
// SCREENSHOTS=docs/img also saves the screenshots the README shows.
"use strict";

const assert = require("node:assert/strict");
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const puppeteer = require("puppeteer-core");

const COLLECTOR = process.env.COLLECTOR;
const SERIES_BENCH = process.env.SERIES_BENCH;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SCREENSHOTS = process.env.SCREENSHOTS || "";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tally-web-"));
const children = [];
let failures = 0;

function cleanup() {
  for (const c of children) c.kill("SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok: ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAILED: ${name}\n  ${e.stack || e}`);
  }
}

// A collector on a free loopback port; resolves to its base URL.
function startCollector(db, extra = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(COLLECTOR, ["--listen", "127.0.0.1:0", "--db", db, ...extra],
                        { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let out = "";
    const timer = setTimeout(() => reject(new Error(`collector did not start: ${out}`)), 20000);
    const onData = (d) => {
      out += d;
      const m = out.match(/listening on (127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(`http://${m[1]}`); }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`collector exited ${code}: ${out}`)));
  });
}

// --- known data --------------------------------------------------------------

const MINUTE = 60_000_000_000n;
const NOW_NS = BigInt(Date.now()) * 1_000_000n;
const START = NOW_NS - 30n * MINUTE;
const GAP = [12n, 13n]; // minutes of web-1 without samples
const PROCESSES = [
  // comm, pid, cores, cgroup, cmdline
  ["burner", 4242, 0.9, "/system.slice/burner.service", "/usr/local/bin/burner --threads 1"],
  ["postgres", 700, 0.25, "/system.slice/postgresql.service", "postgres: checkpointer"],
  ["nginx", 800, 0.08, "/system.slice/nginx.service", "nginx: worker process"],
  ["nginx", 801, 0.07, "/system.slice/nginx.service", "nginx: worker process"],
  ["sshd", 900, 0.01, "/system.slice/ssh.service", "sshd: /usr/sbin/sshd -D"],
];

function line(host, ts, p) {
  const [comm, pid, cores, cgroup, cmdline] = p;
  const cpu = BigInt(Math.round(cores * 60e9));
  return `{"kind":"process","ts_ns":${ts},"interval_ns":${MINUTE},"host":"${host}","pid":${pid},` +
         `"start_time_ns":${START - 3600n * 1_000_000_000n + BigInt(pid)},"comm":"${comm}",` +
         `"cmdline":"${cmdline}","cgroup":"${cgroup}","cpu_ns":${cpu},` +
         `"cpu_pct":${(cores * 100).toFixed(2)},"rss_bytes":${pid * 65536},"exited":false}`;
}

async function post(base, body) {
  const r = await fetch(`${base}/v1/batches`, {
    method: "POST", body, headers: { "Content-Type": "application/json", "User-Agent": "tallyd/test" },
  });
  assert.equal(r.status, 200, await r.text());
}

// The fleet page reads minute rollups, summed in the background once each
// minute is over: wait until both hosts' are there.
async function waitForRollups(base) {
  const q = `/v1/series?group_by=host&from=${START}&to=${NOW_NS - 2n * MINUTE}&step=60`;
  for (let i = 0; i < 200; i++) {
    const answer = await (await fetch(base + q)).json();
    const full = (s) => s.cpu_ns.filter((v) => v !== null).length;
    if (answer.series.length === 2 && answer.series.every((s) => full(s) >= 26)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the collector did not sum its rollups in 20 s");
}

async function seed(base) {
  for (const [agent, host, factor] of [["agent-web-1", "web-1", 1], ["agent-db-1", "db-1", 0.5]]) {
    let seq = 0n;
    for (let m = 0n; m < 30n; m++) {
      if (host === "web-1" && GAP.includes(m)) continue;
      const ts = START + (m + 1n) * MINUTE;
      const samples = PROCESSES.map((p) => line(host, ts, [p[0], p[1], p[2] * factor, p[3], p[4]]));
      await post(base, `{"version":1,"agent_id":"${agent}","host":"${host}","seq":${++seq},` +
                       `"kind":"samples","first_index":0,"batch_samples":${samples.length},` +
                       `"samples":[${samples.join(",")}]}`);
    }
  }
}

// --- the browser -------------------------------------------------------------

async function open(browser, url, errors) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on("console", (m) => { if (m.type() === "error") errors.push(`${url}: ${m.text()}`); });
  page.on("pageerror", (e) => errors.push(`${url}: ${e.message}`));
  await page.goto(url);
  await page.waitForSelector("body[data-ready]", { timeout: 15000 });
  return page;
}

async function shot(page, name) {
  if (!SCREENSHOTS) return;
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, name), fullPage: false });
}

const legend = (page, id) =>
  page.$$eval(`#${id} .u-legend .u-series th`, (ths) => ths.map((t) => t.textContent.trim()));

async function main() {
  assert.ok(COLLECTOR && fs.existsSync(COLLECTOR), `COLLECTOR=${COLLECTOR}`);
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    const base = await startCollector(path.join(tmp, "known.db"), ["--housekeeping-ms", "50"]);
    await seed(base);
    await waitForRollups(base);
    const errors = [];

    await check("fleet page lists both agents and stacks the fleet's CPU by host", async () => {
      const page = await open(browser, `${base}/#/?range=1h`, errors);
      assert.equal(await page.$eval("body", (b) => b.dataset.ready), "1");
      const hosts = await page.$$eval("#agents tbody tr", (rows) => rows.map((r) => r.dataset.host));
      assert.deepEqual(hosts.sort(), ["db-1", "web-1"]);
      const software = await page.$eval("#agents tbody tr", (r) => r.children[2].textContent);
      assert.equal(software, "tallyd/test");
      const series = await legend(page, "fleet-cpu");
      assert.ok(series.includes("web-1") && series.includes("db-1"), series.join(","));
      await shot(page, "fleet.png");
      await page.close();
    });

    await check("host page: the burner on top of the stack, the gap listed as missing", async () => {
      const page = await open(browser, `${base}/#/host/web-1?range=1h&by=comm`, errors);
      const series = await legend(page, "host-cpu");
      // Drawn top first: the legend lists the stack from the top, `other` and
      // the smallest first, and the largest (the burner) last.
      assert.equal(series[series.length - 1], "burner", series.join(","));
      assert.equal(await page.$eval("#gaps", (g) => g.dataset.gaps), "1");
      const why = await page.$$eval("#gaps tr.gap td", (tds) => tds.map((t) => t.textContent));
      assert.equal(why[2], "no samples");
      const top = await page.$$eval("#top tbody tr", (rows) => rows.map((r) => r.children[0].textContent));
      assert.equal(top[0], "burner");
      await shot(page, "host.png");
      await page.close();
    });

    await check("process page: the burner's command line, cgroup and history", async () => {
      const page = await open(browser, `${base}/#/host/web-1?range=1h`, errors);
      await Promise.all([page.waitForFunction(() => location.hash.startsWith("#/process/")),
                         page.click("#top tbody tr a")]);
      await page.waitForSelector("body[data-ready]");
      const info = await page.$eval("#process-info", (e) => e.textContent);
      assert.ok(info.includes("/usr/local/bin/burner --threads 1"), info);
      assert.ok(info.includes("/system.slice/burner.service"), info);
      assert.ok(info.includes("28"), "28 samples: 30 minutes less the gap");
      await shot(page, "process.png");
      await page.close();
    });

    await check("the window is in the URL: a day, then a custom window", async () => {
      const page = await open(browser, `${base}/#/host/web-1?range=1h`, errors);
      await page.click('#range button[data-range="1d"]');
      await page.waitForFunction(() => location.hash.includes("range=1d"));
      await page.waitForSelector("body[data-ready]");
      const source = await page.$eval("main", (m) => m.textContent);
      assert.ok(/Source: (rollup_1m|raw)/.test(source), source.slice(-200));
      await page.close();
    });

    await check("no errors in the console", async () => {
      assert.deepEqual(errors, []);
    });

    await check("with a read token, the page asks for it and then shows the data", async () => {
      fs.writeFileSync(path.join(tmp, "read-tokens"), "s3cret-read\n", { mode: 0o600 });
      const guarded = await startCollector(path.join(tmp, "guarded.db"),
                                           ["--read-token-file", path.join(tmp, "read-tokens")]);
      const page = await browser.newPage();
      await page.goto(`${guarded}/#/`);
      await page.waitForSelector("#token:not([hidden])", { timeout: 10000 });
      await page.type("#token-value", "s3cret-read");
      await page.click("#token button");
      await page.waitForSelector("body[data-ready='1']", { timeout: 10000 });
      assert.ok(await page.$("#agents"));
      await page.close();
    });

    if (SERIES_BENCH) {
      await check("a week of a 100-host fleet loads in under a second", async () => {
        const dir = path.join(tmp, "fleet");
        execFileSync(SERIES_BENCH, ["--hosts", "100", "--hours", "168", "--minute-hours", "3",
                                    "--repetitions", "1", "--dir", dir], { stdio: "ignore" });
        const fleet = await startCollector(path.join(dir, "collector.db"));
        const page = await browser.newPage();
        await page.setViewport({ width: 1280, height: 900 });
        const warm = await open(browser, `${fleet}/#/?range=7d`, []);  // the browser's own start
        await warm.close();
        const began = Date.now();
        await page.goto(`${fleet}/#/?range=7d`);
        await page.waitForSelector("body[data-ready='1']", { timeout: 10000 });
        const ms = Date.now() - began;
        const series = await legend(page, "fleet-cpu");
        assert.ok(series.length >= 11, `top 10 hosts and other: ${series.join(",")}`);
        console.log(`  week of 100 hosts: page ready in ${ms} ms`);
        assert.ok(ms < 1000, `${ms} ms`);
        await page.close();
      });
    }
  } finally {
    await browser.close();
  }
  if (failures) console.log(`${failures} check(s) failed`);
  process.exit(failures ? 1 : 0);  // the collectors' pipes would keep node running
}

main().catch((e) => { console.log(e.stack || e); process.exit(1); });

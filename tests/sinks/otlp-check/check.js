// Validates OTLP/HTTP JSON request bodies that tallyd sent against the OTLP
// protobuf schema, using the generated definitions (protobufjs) that ship
// in @opentelemetry/otlp-transformer, and checks tally's semantic mapping.
//
//   node check.js --host-name H [--host-id ID] --cmdline yes|no BODY.json...
//
// Prints one JSON summary line; exits 1 when anything is wrong.
'use strict';
const fs = require('fs');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');

const Request = root.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;
const DELTA = 1;
const CUMULATIVE = 2;

const args = process.argv.slice(2);
const opt = {
  files: []
};
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--host-name')
    opt.hostName = args[++i];
  else if (args[i] === '--host-id')
    opt.hostId = args[++i];
  else if (args[i] === '--cmdline')
    opt.cmdline = args[++i] === 'yes';
  else
    opt.files.push(args[i]);
}

const problems = [];
const problem = (where, what) => {
  if (problems.length < 50) problems.push(`${where}: ${what}`);
};

// Deep comparison that names the first difference: what tally sent against
// what the schema made of it. A key the schema does not know disappears; a
// value of the wrong JSON type (an int64 as a number, an enum as a name)
// comes back different.
function diff(sent, canonical, path) {
  if (Array.isArray(sent)) {
    if (!Array.isArray(canonical) || canonical.length !== sent.length)
      return `${path}: array differs`;
    for (let i = 0; i < sent.length; i++) {
      const d = diff(sent[i], canonical[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (sent !== null && typeof sent === 'object') {
    if (canonical === null || typeof canonical !== 'object') return `${path}: object differs`;
    for (const k of Object.keys(sent)) {
      if (!(k in canonical))
        return `${path}.${k}: not a field of the schema (or a default it drops)`;
      const d = diff(sent[k], canonical[k], `${path}.${k}`);
      if (d) return d;
    }
    for (const k of Object.keys(canonical)) {
      if (!(k in sent)) return `${path}.${k}: missing from what tally sent`;
    }
    return null;
  }
  if (typeof sent !== typeof canonical || sent !== canonical) {
    return `${path}: sent ${JSON.stringify(sent)} (${typeof sent}), schema reads ${
        JSON.stringify(canonical)} (${typeof canonical})`;
  }
  return null;
}

const isDecimal = (s) => typeof s === 'string' && /^[0-9]+$/.test(s);

function attributes(resource) {
  const out = {};
  for (const a of resource.attributes || []) out[a.key] = a.value;
  return out;
}

function checkPoint(where, p, valueKind) {
  if (!isDecimal(p.timeUnixNano))
    problem(where, `timeUnixNano ${JSON.stringify(p.timeUnixNano)} is not a decimal string`);
  if (!isDecimal(p.startTimeUnixNano))
    problem(where, 'startTimeUnixNano is not a decimal string');
  else if (BigInt(p.startTimeUnixNano) > BigInt(p.timeUnixNano))
    problem(where, 'starts after it ends');
  if (valueKind === 'double' && typeof p.asDouble !== 'number') problem(where, 'asDouble missing');
  if (valueKind === 'int' && !isDecimal(p.asInt))
    problem(where, `asInt ${JSON.stringify(p.asInt)} is not a decimal string`);
}

function checkSum(where, m, unit, temporality, monotonic, valueKind) {
  if (m.unit !== unit) problem(where, `unit ${m.unit}, expected ${unit}`);
  if (!m.sum) return problem(where, 'not a Sum');
  if (m.sum.aggregationTemporality !== temporality)
    problem(where, `temporality ${m.sum.aggregationTemporality}, expected ${temporality}`);
  if (Boolean(m.sum.isMonotonic) !== monotonic) problem(where, `isMonotonic ${m.sum.isMonotonic}`);
  if ((m.sum.dataPoints || []).length !== 1) problem(where, 'expected one data point');
  for (const p of m.sum.dataPoints || []) checkPoint(where, p, valueKind);
}

const summary = {
  requests: 0,
  resources: 0,
  processes: 0,
  cpu_points: 0,
  memory_points: 0,
  host_resources: 0,
  cgroup_resources: 0,
  remainder_resources: 0,
  group_resources: 0,
  cmdline_resources: 0,
  bytes: 0
};

for (const file of opt.files) {
  const text = fs.readFileSync(file, 'utf8');
  summary.requests++;
  summary.bytes += text.length;
  let sent;
  try {
    sent = JSON.parse(text);
  } catch (e) {
    problem(file, `not JSON: ${e.message}`);
    continue;
  }

  const message = Request.fromObject(sent);
  const canonical = Request.toObject(message, {longs: String, enums: Number});
  const d = diff(sent, canonical, file);
  if (d) problem('schema', d);
  const wire = Request.encode(message).finish();
  const decoded = Request.decode(wire);
  const err = Request.verify(decoded);
  if (err) problem(file, `decoded message does not verify: ${err}`);

  for (const [i, rm] of (sent.resourceMetrics || []).entries()) {
    const where = `${file} resourceMetrics[${i}]`;
    summary.resources++;
    const attrs = attributes(rm.resource || {});
    if (!attrs['host.name'] || attrs['host.name'].stringValue !== opt.hostName)
      problem(where, 'host.name');
    if (opt.hostId && (!attrs['host.id'] || attrs['host.id'].stringValue !== opt.hostId))
      problem(where, 'host.id is not /etc/machine-id');
    const scopes = rm.scopeMetrics || [];
    if (scopes.length !== 1 || scopes[0].scope.name !== 'tally')
      problem(where, 'one scope named tally expected');
    const metrics = {};
    for (const m of (scopes[0] || {}).metrics || []) metrics[m.name] = m;
    if (attrs['process.pid']) {
      summary.processes++;
      if (!isDecimal(attrs['process.pid'].intValue))
        problem(where, 'process.pid is not an int64 string');
      if (!attrs['process.executable.name'] ||
          typeof attrs['process.executable.name'].stringValue !== 'string')
        problem(where, 'process.executable.name');
      if (attrs['process.command_line']) {
        summary.cmdline_resources++;
        if (!opt.cmdline) problem(where, 'process.command_line sent although not enabled');
      }
      const cpu = metrics['process.cpu.time'];
      if (!cpu)
        problem(where, 'no process.cpu.time');
      else {
        summary.cpu_points++;
        checkSum(`${where} process.cpu.time`, cpu, 's', DELTA, true, 'double');
      }
      const wait = metrics['tally.process.cpu.wait_time'];
      if (!wait)
        problem(where, 'no tally.process.cpu.wait_time');
      else
        checkSum(`${where} tally.process.cpu.wait_time`, wait, 's', DELTA, true, 'double');
      const mem = metrics['process.memory.usage'];
      if (mem) {
        summary.memory_points++;
        checkSum(`${where} process.memory.usage`, mem, 'By', CUMULATIVE, false, 'int');
      }
    } else if (attrs['tally.cgroup.path']) {
      summary.cgroup_resources++;
      if (typeof attrs['tally.cgroup.path'].stringValue !== 'string')
        problem(where, 'tally.cgroup.path');
      for (const name of ['tally.cgroup.cpu.time', 'tally.cgroup.cpu.throttled_time',
                          'tally.cgroup.cpu.pressure.some', 'tally.cgroup.cpu.pressure.full']) {
        if (metrics[name]) checkSum(`${where} ${name}`, metrics[name], 's', DELTA, true, 'double');
      }
      for (const name of ['tally.cgroup.cpu.periods', 'tally.cgroup.cpu.throttled_periods']) {
        if (metrics[name])
          checkSum(`${where} ${name}`, metrics[name], '{period}', DELTA, true, 'int');
      }
      const limit = metrics['tally.cgroup.cpu.limit'];
      if (!limit || !limit.gauge || limit.gauge.dataPoints.length !== 1)
        problem(where, 'tally.cgroup.cpu.limit is not a one-point Gauge');
    } else if (attrs['tally.remainder']) {
      // The processes not sent on their own (interval_rollup.h).
      summary.remainder_resources++;
      if (attrs['tally.remainder'].boolValue !== true) problem(where, 'tally.remainder');
      for (const name of ['tally.other.cpu.time', 'tally.other.cpu.wait_time']) {
        if (!metrics[name])
          problem(where, `remainder resource without ${name}`);
        else
          checkSum(`${where} ${name}`, metrics[name], 's', DELTA, true, 'double');
      }
      const g = metrics['tally.other.processes'];
      if (!g || !g.gauge || g.gauge.dataPoints.length !== 1)
        problem(where, 'tally.other.processes is not a one-point Gauge');
    } else if (attrs['tally.group.by']) {
      summary.group_resources++;
      if (!['cgroup', 'comm', 'group'].includes(attrs['tally.group.by'].stringValue))
        problem(where, `tally.group.by ${JSON.stringify(attrs['tally.group.by'])}`);
      if (!attrs['tally.group.name'] || typeof attrs['tally.group.name'].stringValue !== 'string')
        problem(where, 'tally.group.name');
      for (const name of ['tally.group.cpu.time', 'tally.group.cpu.wait_time',
                          'tally.group.other.cpu.time']) {
        if (!metrics[name])
          problem(where, `group resource without ${name}`);
        else
          checkSum(`${where} ${name}`, metrics[name], 's', DELTA, true, 'double');
      }
      for (const name of ['tally.group.processes', 'tally.group.memory.usage']) {
        const g = metrics[name];
        if (!g || !g.gauge || g.gauge.dataPoints.length !== 1)
          problem(where, `${name} is not a one-point Gauge`);
      }
    } else {
      summary.host_resources++;
      for (const name
               of ['system.cpu.logical.count', 'tally.host.cpu.busy_time', 'tally.host.processes',
                   'tally.dropped_updates', 'tally.host.cpu.steal_time',
                   'tally.host.cpu.pressure.some', 'tally.host.cpu.pressure.full',
                   'tally.host.cpu.unaccounted_time', 'tally.bpf.run_time']) {
        if (!metrics[name]) problem(where, `host resource without ${name}`);
      }
      if (metrics['tally.host.cpu.busy_time'])
        checkSum(
            `${where} busy_time`, metrics['tally.host.cpu.busy_time'], 's', DELTA, true, 'double');
      if (metrics['system.cpu.logical.count'])
        checkSum(
            `${where} logical.count`, metrics['system.cpu.logical.count'], '{cpu}', CUMULATIVE,
            false, 'int');
      for (const name of ['tally.host.processes', 'tally.host.cpu.unaccounted_time']) {
        const g = metrics[name];
        if (g && (!g.gauge || g.gauge.dataPoints.length !== 1))
          problem(where, `${name} is not a one-point Gauge`);
      }
    }
  }
}
if (opt.cmdline && summary.cmdline_resources === 0)
  problem('cmdline', 'enabled, but no process.command_line was sent');
summary.problems = problems;
console.log(JSON.stringify(summary));
process.exit(problems.length ? 1 : 0);

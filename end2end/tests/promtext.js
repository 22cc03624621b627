// A strict reader of the Prometheus text / OpenMetrics exposition, enough to prove that what
// Vigil serves at /metrics is well formed: every line is a comment of a known kind or a sample
// `name{labels} value [timestamp]`, and every sample belongs to a declared family.
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const SUFFIXES = ['_total', '_bucket', '_sum', '_count', '_created', '_info', ''];

function parseValue(text, line) {
  if (/^[+-]?Inf$/.test(text) || text === 'NaN') return Number(text.replace('Inf', 'Infinity'));
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw new Error(`bad value ${JSON.stringify(text)} in: ${line}`);
  return Number(text);
}

function parseLabels(text, line) {
  const labels = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const name = text.slice(i, eq).trim();
    if (!LABEL.test(name)) throw new Error(`bad label name ${JSON.stringify(name)} in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let j = eq + 2;
    let value = '';
    while (j < text.length && text[j] !== '"') {
      if (text[j] === '\\') { j++; value += text[j] === 'n' ? '\n' : text[j]; } else value += text[j];
      j++;
    }
    if (j >= text.length) throw new Error(`unterminated label value in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
  }
  return labels;
}

/** Returns { families: Map(name → {type, help}), samples: [{name, labels, value}] } or throws. */
export function parseExposition(body) {
  const families = new Map();
  const samples = [];
  const lines = body.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const line of lines) {
    if (line === '# EOF') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE|UNIT) ([^ ]+)(?: (.*))?$/.exec(line);
      if (!m) throw new Error(`bad comment: ${line}`);
      if (!NAME.test(m[2])) throw new Error(`bad metric name in: ${line}`);
      const fam = families.get(m[2]) || {};
      if (m[1] === 'TYPE') fam.type = m[3];
      if (m[1] === 'HELP') fam.help = m[3];
      families.set(m[2], fam);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([^ ]+)( -?\d+(\.\d+)?)?$/.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const name = m[1];
    const family = SUFFIXES.map((s) => (s && name.endsWith(s) ? name.slice(0, -s.length) : name)).find((f) => families.has(f));
    if (!family) throw new Error(`sample of undeclared family: ${line}`);
    samples.push({ name, labels: m[3] ? parseLabels(m[3], line) : {}, value: parseValue(m[4], line) });
  }
  return { families, samples };
}

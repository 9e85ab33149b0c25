/** The one table the bench prints: figure, vault, reference, ratio, target, pass/fail. */
export function formatTable(rows) {
  const header = ['figure', 'vault', 'reference', 'ratio', 'target', 'result'];
  const lines = rows.map((r) => [
    r.figure,
    cell(r.vault, r.unit),
    cell(r.reference, r.unit),
    r.ratio === undefined || r.ratio === null ? '' : `${r.ratio}×`,
    targetText(r.target),
    r.pass === undefined ? '' : r.pass ? 'pass' : 'FAIL',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => String(l[i]).length)));
  const fmt = (l) => l.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(fmt)].join('\n');
}

/** The same rows as a Markdown table, for the README. */
export function formatMarkdown(rows) {
  const out = ['| figure | vault | reference | ratio | target | result |', '|---|---:|---:|---:|---:|---|'];
  for (const r of rows) {
    out.push(
      `| ${r.figure} | ${cell(r.vault, r.unit)} | ${cell(r.reference, r.unit)} | ${r.ratio === undefined || r.ratio === null ? '' : `${r.ratio}×`} | ${targetText(r.target)} | ${r.pass === undefined ? '' : r.pass ? 'pass' : '**FAIL**'} |`,
    );
  }
  return out.join('\n');
}

function cell(value, unit) {
  if (value === null || value === undefined) return '';
  return unit ? `${value} ${unit}` : String(value);
}

function targetText(target) {
  if (!target) return '';
  if (target.text) return target.text;
  if (target.min !== undefined) return `≥ ${target.min}${target.ratio === false ? '' : '×'}`;
  if (target.max !== undefined) return `≤ ${target.max}${target.unit ? ` ${target.unit}` : target.ratio === false ? '' : '×'}`;
  if (target.equals !== undefined) return `= ${target.equals}`;
  return '';
}

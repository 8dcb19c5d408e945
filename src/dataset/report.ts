/**
 * The per-video HTML report (docs/ARCHITECTURE.md "Stored artifacts"): a self-contained contact sheet, saved next to the dataset as
 * `datasets/report.html`, so people can look at what the pipeline made instead of reading JSON. Images are
 * embedded as data URIs, so the file renders from GCS, a download or a local copy alike.
 */

/** One track's row of the contact sheet. */
export interface ReportTrack {
  trackId: number;
  train: number;
  val: number;
  gap: number;
  /**
   * A few crops in time order: frame id, the original crop and the background-removed crop (JPEG bytes;
   * absent when no background was removed).
   */
  samples: { frameId: number; original: Buffer; modified?: Buffer }[];
}

/** Everything the report shows. */
export interface ReportInput {
  tenantId: string;
  runGuid: string;
  videoGuid: string;
  source: string;
  counts: { frames?: number; detections?: number; tracks: number; crops: number; train: number; val: number; gap: number };
  /** Crops rejected by step 6, by reason (`tooSmall`, `offFrame`, ...). */
  rejected: Record<string, number>;
  /** Detections dropped before tracking in step 5, by reason (`feet-off-pitch`). */
  dropped: Record<string, number>;
  /**
   * The background treatment of step 7: a line for people (`describeBackground` of ./background.ts) and
   * whether anything was removed (if not, each sample shows the original crop only).
   */
  background: { text: string; removed: boolean };
  trainOnlyTracks: number[];
  tracks: ReportTrack[];
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const img = (jpeg: Buffer, title: string) => `<img src="data:image/jpeg;base64,${jpeg.toString('base64')}" title="${esc(title)}" alt="${esc(title)}">`;
const table = (rows: Record<string, number>) =>
  Object.keys(rows).length === 0
    ? '<p class="muted">none</p>'
    : `<table>${Object.entries(rows)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`)
        .join('')}</table>`;

/**
 * Renders the report. Pure: the same input gives the same bytes.
 * @returns the HTML document as a UTF-8 string
 */
export function renderReport(r: ReportInput): string {
  const c = r.counts;
  const rows = r.tracks
    .map(
      (t) => `<section class="track"><h3>track_${t.trackId} <span class="muted">train ${t.train} · val ${t.val}${t.gap ? ` · gap ${t.gap}` : ''}${r.trainOnlyTracks.includes(t.trackId) ? ' · train only' : ''}</span></h3>
<div class="pairs">${t.samples.map((s) => `<figure>${img(s.original, `track_${t.trackId} frame ${s.frameId} original`)}${s.modified ? img(s.modified, `track_${t.trackId} frame ${s.frameId} ${r.background.text}`) : ''}<figcaption>frame ${s.frameId}</figcaption></figure>`).join('')}</div></section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dataset report: video ${esc(r.videoGuid)}</title>
<style>
body{font-family:DejaVu Sans,Arial,sans-serif;margin:16px;color:#222}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:18px 0 6px} h3{font-size:14px;margin:10px 0 4px}
.muted{color:#777;font-weight:normal} .summary{display:flex;gap:32px;flex-wrap:wrap}
table{border-collapse:collapse} th,td{padding:2px 8px;text-align:left;border-bottom:1px solid #ddd}
.pairs{display:flex;flex-wrap:wrap;gap:8px} figure{margin:0;text-align:center;font-size:11px;color:#555}
figure img{height:96px;margin:0 1px;image-rendering:auto;border:1px solid #ccc}
.track{border-top:1px solid #eee;padding-top:4px}
</style></head><body>
<h1>Dataset report — video ${esc(r.videoGuid)}</h1>
<p class="muted">tenant ${esc(r.tenantId)} · run ${esc(r.runGuid)} · source ${esc(r.source)} · background mode ${esc(r.background.text)}</p>
<div class="summary">
<div><h2>Counts</h2>${table({ 'sampled frames': c.frames ?? 0, detections: c.detections ?? 0, 'tracks with crops': c.tracks, crops: c.crops, 'train images': c.train, 'val images': c.val, 'crops left out (gap)': c.gap })}</div>
<div><h2>Crops rejected (step 6)</h2>${table(r.rejected)}</div>
<div><h2>Detections dropped (step 5)</h2>${table(r.dropped)}</div>
</div>
<h2>Tracks <span class="muted">(${r.tracks.length} shown; ${r.background.removed ? 'each pair: original | background removed' : 'original crops: no background removed'})</span></h2>
${rows}
</body></html>
`;
}

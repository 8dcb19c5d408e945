/**
 * The per-video HTML report (docs/ARCHITECTURE.md "Stored artifacts"): a self-contained contact sheet, saved next to the dataset as
 * `datasets/report.html`, so people can look at what the pipeline made instead of reading JSON. Images are
 * embedded as data URIs, so the file renders from GCS, a download or a local copy alike.
 *
 * For checking that every class is one person, each class shows its first, middle and last crops, a
 * timeline of where it lies in the video with every tracklet cut and join marked, and its team and role
 * (with its kit colour); classes are grouped by team and role when the video has two teams.
 */
import { labToHex, type Lab } from '../vision/teams/lab';

/** One track's row of the contact sheet. */
export interface ReportTrack {
  trackId: number;
  train: number;
  val: number;
  /** Test images; absent without a test split. */
  test?: number;
  gap: number;
  /**
   * A few crops in time order: frame id, the original crop and the background-removed crop (JPEG bytes;
   * absent when no background was removed), and which one it is (`first`, `middle`, `last`).
   */
  samples: { frameId: number; original: Buffer; modified?: Buffer; label?: string }[];
  /** Frame ids of the class's first and last boxes (for its timeline). */
  span?: [number, number];
  /** Team and role (`detections.json` `teams`); absent when the run has no teams. */
  team?: 'A' | 'B' | null;
  role?: 'player' | 'goalkeeper' | 'referee' | 'other' | null;
  /** Kit colour, CIELAB. */
  kit?: Lab | null;
  /** Tracklet cuts and joins of this class, in frame order. */
  marks?: ReportMark[];
}

/** A cut or join on a class's timeline. */
export interface ReportMark {
  frameId: number;
  kind: 'cut' | 'join';
  /** One line for people, e.g. "cut at frame 120 (overlap): continues as track_7". */
  text: string;
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
  /** Tracks left out of the dataset, with the reason (./split.ts); absent in older callers. */
  excludedTracks?: { trackId: number; reason: string }[];
  tracks: ReportTrack[];
  /** The video's team status, its reason and the team centres (CIELAB); absent when the run has no teams. */
  teams?: { status: string; reason: string; centres: { A: Lab; B: Lab } | null };
  /** Frame ids of the video's first and last sampled frames (timelines span them). */
  frameRange?: [number, number];
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

const swatch = (lab: Lab | null | undefined, title: string) => (lab ? `<span class="swatch" style="background:${labToHex(lab)}" title="${esc(title)}"></span>` : '');

/** Team and role of a class as one label: `team A`, `team A goalkeeper`, `referee`, `other`; empty without teams. */
function teamLabel(t: ReportTrack): string {
  if (t.team) return t.role === 'goalkeeper' ? `team ${t.team} goalkeeper` : `team ${t.team}`;
  return t.role ?? '';
}

/** The class's timeline: its span over the video's sampled frames, cuts (red) and joins (blue) marked. */
function timeline(t: ReportTrack, range: [number, number] | undefined): string {
  if (!range || !t.span) return '';
  const len = Math.max(1, range[1] - range[0]);
  const pct = (f: number) => (((f - range[0]) / len) * 100).toFixed(2);
  const marks = (t.marks ?? []).map((m) => `<i class="${m.kind}" style="left:${pct(m.frameId)}%" title="${esc(m.text)}"></i>`).join('');
  const samples = t.samples.map((s) => `<i class="sample" style="left:${pct(s.frameId)}%" title="${esc(`${s.label ?? 'crop'}: frame ${s.frameId}`)}"></i>`).join('');
  return `<div class="timeline" title="frames ${t.span[0]}-${t.span[1]} of ${range[0]}-${range[1]}"><b style="left:${pct(t.span[0])}%;width:${(((t.span[1] - t.span[0]) / len) * 100).toFixed(2)}%"></b>${samples}${marks}</div>`;
}

function trackSection(t: ReportTrack, r: ReportInput): string {
  const label = teamLabel(t);
  const marks = t.marks ?? [];
  const cuts = marks.filter((m) => m.kind === 'cut').length;
  const joins = marks.length - cuts;
  const excluded = r.excludedTracks?.find((e) => e.trackId === t.trackId);
  return `<section class="track"><h3>track_${t.trackId} ${label ? `<span class="team">${esc(label)}</span>` : ''}${swatch(t.kit, `kit colour of track_${t.trackId}`)} <span class="muted">train ${t.train} · val ${t.val}${t.test !== undefined ? ` · test ${t.test}` : ''}${t.gap ? ` · gap ${t.gap}` : ''}${r.trainOnlyTracks.includes(t.trackId) ? ' · train only' : ''}${excluded ? ` · not in the dataset (${esc(excluded.reason)})` : ''}${t.span ? ` · frames ${t.span[0]}-${t.span[1]}` : ''}${cuts ? ` · <span class="cut-text">${cuts} cut${cuts > 1 ? 's' : ''}</span>` : ''}${joins ? ` · <span class="join-text">${joins} join${joins > 1 ? 's' : ''}</span>` : ''}</span></h3>
${timeline(t, r.frameRange)}<div class="pairs">${t.samples.map((s) => `<figure>${img(s.original, `track_${t.trackId} frame ${s.frameId} original`)}${s.modified ? img(s.modified, `track_${t.trackId} frame ${s.frameId} ${r.background.text}`) : ''}<figcaption>${s.label ? `${esc(s.label)} · ` : ''}frame ${s.frameId}</figcaption></figure>`).join('')}</div>${
    marks.length ? `<ul class="marks">${marks.map((m) => `<li class="${m.kind}-text">${esc(m.text)}</li>`).join('')}</ul>` : ''
  }</section>`;
}

/** Groups of classes in the order shown: team A, team B (goalkeepers with their team), referees, goalkeepers without a team, other, then classes without a team or role. */
const GROUPS: { title: string; test: (t: ReportTrack) => boolean }[] = [
  { title: 'Team A', test: (t) => t.team === 'A' },
  { title: 'Team B', test: (t) => t.team === 'B' },
  { title: 'Referees', test: (t) => !t.team && t.role === 'referee' },
  { title: 'Goalkeepers without a team', test: (t) => !t.team && t.role === 'goalkeeper' },
  { title: 'Other (neither team\'s kit: lone officials, mixed classes, kits measured badly)', test: (t) => !t.team && t.role === 'other' },
  { title: 'No team or role', test: (t) => !t.team && !t.role },
];

/**
 * Renders the report. Pure: the same input gives the same bytes.
 * @returns the HTML document as a UTF-8 string
 */
export function renderReport(r: ReportInput): string {
  const c = r.counts;
  const grouped = r.teams?.status === 'teams';
  const rows = grouped
    ? GROUPS.map((g) => {
        const list = r.tracks.filter(g.test);
        return list.length ? `<h3 class="group">${esc(g.title)} <span class="muted">(${list.length})</span></h3>\n${list.map((t) => trackSection(t, r)).join('\n')}` : '';
      })
        .filter(Boolean)
        .join('\n')
    : r.tracks.map((t) => trackSection(t, r)).join('\n');
  const teams = r.teams
    ? `<p><b>Teams:</b> ${esc(r.teams.reason)}${r.teams.centres ? ` · kit colours: A ${swatch(r.teams.centres.A, 'team A')} B ${swatch(r.teams.centres.B, 'team B')}` : ''}</p>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dataset report: video ${esc(r.videoGuid)}</title>
<style>
body{font-family:DejaVu Sans,Arial,sans-serif;margin:16px;color:#222}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:18px 0 6px} h3{font-size:14px;margin:10px 0 4px}
.muted{color:#777;font-weight:normal} .summary{display:flex;gap:32px;flex-wrap:wrap}
table{border-collapse:collapse} th,td{padding:2px 8px;text-align:left;border-bottom:1px solid #ddd}
.pairs{display:flex;flex-wrap:wrap;gap:8px} figure{margin:0;text-align:center;font-size:11px;color:#555}
figure img{height:96px;margin:0 1px;image-rendering:auto;border:1px solid #ccc}
.track{display:inline-block;vertical-align:top;min-width:260px;max-width:620px;margin:0 8px 8px 0;padding:4px;border:1px solid #e4e4e4}
.track .pairs{flex-wrap:nowrap}
.track h3{font-size:13px} .track .muted{font-size:11px}
.team{font-size:12px;padding:1px 6px;border-radius:3px;background:#eef;font-weight:normal}
.swatch{display:inline-block;width:14px;height:14px;border:1px solid #888;vertical-align:middle;margin:0 4px}
.timeline{position:relative;height:10px;background:#f2f2f2;margin:2px 0 6px}
.timeline b{position:absolute;top:3px;height:4px;background:#999;min-width:2px}
.timeline i{position:absolute;top:0;width:2px;height:10px;margin-left:-1px}
.timeline i.sample{background:#555;height:4px;top:3px} .timeline i.cut{background:#d00} .timeline i.join{background:#06c}
.cut-text{color:#b00} .join-text{color:#05a} .marks{margin:2px 0;padding-left:16px;font-size:11px}
.group{font-size:15px;margin:16px 0 4px;border-bottom:2px solid #ccc}
</style></head><body>
<h1>Dataset report — video ${esc(r.videoGuid)}</h1>
<p class="muted">tenant ${esc(r.tenantId)} · run ${esc(r.runGuid)} · source ${esc(r.source)} · background mode ${esc(r.background.text)}</p>
<div class="summary">
<div><h2>Counts</h2>${table({ 'sampled frames': c.frames ?? 0, detections: c.detections ?? 0, 'tracks with crops': c.tracks, crops: c.crops, 'train images': c.train, 'val images': c.val, 'crops left out (gap)': c.gap })}</div>
<div><h2>Crops rejected (step 6)</h2>${table(r.rejected)}</div>
<div><h2>Detections dropped (step 5)</h2>${table(r.dropped)}</div>
</div>
<h2>Tracks <span class="muted">(${r.tracks.length} shown; ${r.background.removed ? 'each pair: original | background removed' : 'original crops: no background removed'}; first, middle and last crop of each; timeline: grey the class's frames, red ticks cuts, blue ticks joins)</span></h2>
${teams}
${rows}
</body></html>
`;
}

/**
 * The tracklet record of `detections.json` (`tracklets`, written by step 5's tracklet cuts and joins:
 * src/vision/tracking/tracklets.ts and join.ts), as far as the report reads it. A cut: at `frame_id`
 * tracklet `old_tracklet_id` ended and `new_tracklet_id` continued the tracker's track, for `reason`. A
 * join: tracklets `from` and `to` (starting `gap_frames` frames after `from` ended) are one class, `track_id`.
 */
export interface TrackletRecord {
  cuts: readonly { frame_id: number; reason: string; old_tracklet_id: number; new_tracklet_id: number }[];
  joins: readonly { from: number; to: number; track_id: number; gap_frames: number }[];
}

/** The part of `detections.json` frames that {@link classMarks} reads: each box's class and tracklet. */
export interface MarkFrame {
  frame_id: number;
  detections: readonly { track_id: number; tracklet_id?: number }[];
}

/**
 * The cuts and joins of a tracklet record as timeline marks per class: a cut marks the class that ended and,
 * when its boxes were kept, the class that continued; a join marks the joined class at the first frame of
 * its later tracklet.
 * @param record `tracklets` of `detections.json`; absent (older runs, or no cuts recorded): no marks
 * @param frames the frames, for each tracklet's class and first frame (`tracklet_id` of a box)
 * @returns marks by track id, each list in frame order
 */
export function classMarks(record: TrackletRecord | undefined, frames: readonly MarkFrame[]): Map<number, ReportMark[]> {
  const out = new Map<number, ReportMark[]>();
  if (!record) return out;
  const classOf = new Map<number, number>();
  const firstFrame = new Map<number, number>();
  for (const f of frames) {
    for (const d of f.detections) {
      if (d.tracklet_id === undefined) continue;
      classOf.set(d.tracklet_id, d.track_id);
      if (!firstFrame.has(d.tracklet_id) || f.frame_id < firstFrame.get(d.tracklet_id)!) firstFrame.set(d.tracklet_id, f.frame_id);
    }
  }
  const add = (id: number | undefined, m: ReportMark) => id !== undefined && (out.get(id) ?? out.set(id, []).get(id)!).push(m);
  for (const c of record.cuts) {
    const from = classOf.get(c.old_tracklet_id);
    const to = classOf.get(c.new_tracklet_id);
    const same = from !== undefined && from === to;
    add(from, { frameId: c.frame_id, kind: 'cut', text: `cut at frame ${c.frame_id} (${c.reason})${same ? ', joined again' : to !== undefined ? `: continues as track_${to}` : ''}` });
    if (!same) add(to, { frameId: c.frame_id, kind: 'cut', text: `starts at a cut at frame ${c.frame_id} (${c.reason})${from !== undefined ? ` of track_${from}` : ''}` });
  }
  for (const j of record.joins) {
    const at = firstFrame.get(j.to);
    if (at === undefined) continue;
    add(j.track_id, { frameId: at, kind: 'join', text: `joined at frame ${at}, after a gap of ${j.gap_frames} frames` });
  }
  for (const list of out.values()) list.sort((a, b) => a.frameId - b.frameId || a.kind.localeCompare(b.kind));
  return out;
}

/**
 * Which crops of a class of `n` crops (in time order) its strip shows: the first, the middle
 * (`floor((n - 1) / 2)`) and the last; fewer when they coincide (one crop: `first`; two: `first`, `last`).
 * @returns indices into the class's crops with their labels, ascending
 */
export function stripPicks(n: number): { index: number; label: 'first' | 'middle' | 'last' }[] {
  const out: { index: number; label: 'first' | 'middle' | 'last' }[] = [];
  for (const [index, label] of [[0, 'first'], [Math.floor((n - 1) / 2), 'middle'], [n - 1, 'last']] as const) {
    if (n > 0 && !out.some((p) => p.index === index)) out.push({ index, label });
  }
  return out;
}

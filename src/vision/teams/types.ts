/**
 * Types shared by the team clustering (./cluster.ts) and the roles of its outliers (./roles.ts).
 */
import type { Lab } from './lab';

/** What `assignTeams` (./cluster.ts) knows of one class (track). */
export interface ClassKitInput {
  trackId: number;
  /** The class's kit colour (`classKit` of ./kit.ts); null when none of its boxes has one. */
  kit: Lab | null;
  /** How many of its boxes have a kit colour. */
  boxes: number;
  /** Median ΔE of its box colours from `kit` (`kitSpread` of ./kit.ts); null without a kit colour. */
  spread: number | null;
  /** Frame ids where the class has a box (any order). */
  frames: readonly number[];
}

/** A class's team and role. */
export interface ClassTeam {
  trackId: number;
  /** `A` or `B` (players); null for officials, goalkeepers, other outliers, and when the video has no two teams. */
  team: 'A' | 'B' | null;
  /** null when undetermined (no two teams, or no kit colour). */
  role: 'player' | 'goalkeeper' | 'referee' | 'other' | null;
  kit: Lab | null;
  /** ΔE to the nearest team centre; null without teams or kit colour. */
  distance: number | null;
  /** Whether the class took part in fitting (enough box colours). */
  fitted: boolean;
}

/** The run-level dataset plan: unique class names across videos, one class list, folders kept. */
import { describe, expect, it } from 'vitest';
import { planRunDataset, runClassName, type VideoDatasetImage } from '../src/dataset/merge';

const img = (file: string, track_id: number, split: VideoDatasetImage['split'] = 'train', augmentation: unknown = null): VideoDatasetImage => ({
  file,
  split,
  track_id,
  frame_id: 1,
  bbox: [0, 0, 1, 1],
  source_crop: 's',
  augmentation,
});

describe('planRunDataset', () => {
  it('names classes by video and track, so track_0 of two videos never collides', () => {
    const plan = planRunDataset([
      { videoGuid: 'bbb', images: [img('train/track_0/crop_0.jpg', 0), img('val/track_0/crop_5.jpg', 0, 'val')] },
      { videoGuid: 'aaa', images: [img('train/track_0/crop_0.jpg', 0), img('train/track_10/crop_1.jpg', 10), img('train/track_2/crop_2.jpg', 2)] },
    ]);
    expect(plan.classes).toEqual(['aaa_track_0', 'aaa_track_10', 'aaa_track_2', 'bbb_track_0']);
    expect(plan.images.map((i) => [i.from, i.file, i.class_index])).toEqual([
      ['train/track_0/crop_0.jpg', 'train/bbb_track_0/crop_0.jpg', 3],
      ['val/track_0/crop_5.jpg', 'val/bbb_track_0/crop_5.jpg', 3],
      ['train/track_0/crop_0.jpg', 'train/aaa_track_0/crop_0.jpg', 0],
      ['train/track_10/crop_1.jpg', 'train/aaa_track_10/crop_1.jpg', 1],
      ['train/track_2/crop_2.jpg', 'train/aaa_track_2/crop_2.jpg', 2],
    ]);
    expect(new Set(plan.images.map((i) => i.file)).size).toBe(plan.images.length);
  });

  it('keeps each image folder (train_aug too), split, augmentation and team', () => {
    const plan = planRunDataset([{ videoGuid: 'v', images: [img('train_aug/track_1/crop_0_aug0.jpg', 1, 'train', { flip: true })], labelOf: () => ({ team: 'B', role: 'player' }) }]);
    expect(plan.images[0]).toMatchObject({ file: 'train_aug/v_track_1/crop_0_aug0.jpg', split: 'train', augmentation: { flip: true }, team: 'B', role: 'player', videoGuid: 'v' });
  });

  it('refuses a repeated video GUID and a file outside {folder}/{class}/{name}', () => {
    expect(() => planRunDataset([{ videoGuid: 'v', images: [] }, { videoGuid: 'v', images: [] }])).toThrow(/twice/);
    expect(() => planRunDataset([{ videoGuid: 'v', images: [img('crop_0.jpg', 0)] }])).toThrow(RangeError);
    expect(() => runClassName('a/b', 1)).toThrow(RangeError);
  });
});

/**
 * Pretty JSON (`JSON.stringify(value, null, 2)`) of an object whose last property is a long array, written
 * one element at a time: the bytes are those of stringifying the whole object, without ever holding the
 * array or its text in memory (step 9's manifest: every dataset image of a video).
 *
 * For an object `{ ...head, [key]: a }` of n elements, `prettyJsonOpen(head, key) + prettyJsonItem(a[0], 0) +
 * … + prettyJsonItem(a[n-1], n-1) + prettyJsonClose(n)` equals `JSON.stringify({ ...head, [key]: a }, null, 2)
 * + '\n'` (the text `RunFiles.writeJson` writes). `key` becomes the last property (spread order, ECMA-262
 * OrdinaryOwnPropertyKeys for string keys). Elements are indented by stringifying each on its own and
 * shifting every line by four spaces; JSON strings escape line breaks (ECMA-262 QuoteJSONString), so every
 * `\n` of an element's text is a line break of the layout.
 */

/** The empty array's text, through the object's closing brace. */
const EMPTY_TAIL = '[]\n}';

/**
 * Everything of the object's pretty JSON up to the array's key and `": "`.
 * @throws RangeError when `head` already has `key`
 */
export function prettyJsonOpen(head: object, key: string): string {
  if (Object.hasOwn(head, key)) throw new RangeError(`head already has the property ${JSON.stringify(key)}`);
  const empty = JSON.stringify({ ...head, [key]: [] }, null, 2);
  return empty.slice(0, empty.length - EMPTY_TAIL.length);
}

/** Element `index` (0-based, in order) of the array, with the bracket or comma that precedes it. */
export function prettyJsonItem(value: unknown, index: number): string {
  return `${index === 0 ? '[\n' : ',\n'}    ${JSON.stringify(value, null, 2).replaceAll('\n', '\n    ')}`;
}

/** What follows the last of `count` elements (for none, the empty array `[]`), through the closing `}` and `\n`. */
export function prettyJsonClose(count: number): string {
  return count === 0 ? `${EMPTY_TAIL}\n` : '\n  ]\n}\n';
}

// A router file written by `tierflow train` (a policy's classifier.modelFile, `score --model`).
import { readFileSync } from 'node:fs';
import { type Classifier, loadClassifier } from '../core/classifier/index.js';

/** Reads and validates a router file written by `tierflow train`. */
export function readClassifierFile(path: string): Classifier {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      cause: e,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  try {
    return loadClassifier(json);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`, { cause: e });
  }
}

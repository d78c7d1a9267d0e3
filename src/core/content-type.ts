// Chat completions are JSON: a body declared as anything else (text/plain, image/png, a form) is
// refused with a 415 that says what to send, on both planes. No content-type at all is taken as
// JSON (some minimal clients omit it).
import { ApiError } from './errors.js';

/** undefined when the declared content type is JSON (or absent), else the 415 to answer with. */
export function unsupportedContentType(contentType: string | undefined): ApiError | undefined {
  if (contentType === undefined || contentType === '') return undefined;
  const semi = contentType.indexOf(';');
  const media = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (media === 'application/json' || (media.startsWith('application/') && media.endsWith('+json')))
    return undefined;
  return new ApiError(
    415,
    `Unsupported content-type '${media.slice(0, 100)}': send the request body as JSON with content-type: application/json.`,
    'invalid_request_error',
    'unsupported_media_type',
  );
}

/**
 * The Google Cloud emulator's fixed values and tuning numbers, in one place. Options of startGcpEmulator
 * override the ones marked "default".
 */

export const DEFAULTS = {
  /**
   * A `demo-` project: the Firebase emulators treat such a project as one that exists nowhere else, so they
   * need no login and reach no Google service.
   */
  project: 'demo-plume-images',
  /** The service account the key file is for. */
  serviceAccount: 'plume-publisher',
  /** How long an inserted image stays PENDING after its archive was read (ms). */
  pendingMs: 50,
  /** Items per page of images.list before a nextPageToken (GCE's own default and maximum is 500). */
  listPageSize: 500,
  /** Location of the buckets the handle creates: Cloud Storage's default multi-region. */
  bucketLocation: 'US',
  seed: 1,
} as const;

/** Google's token endpoint: the `aud` a service account's JWT is signed for by Google's own libraries. */
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

/** Access tokens live an hour, as Google's do (`expires_in` 3599). */
export const TOKEN_LIFETIME_S = 3599;

/** The longest a JWT assertion may be valid (exp - iat), and the clock skew allowed on iat. */
export const MAX_ASSERTION_S = 3600;
export const CLOCK_SKEW_S = 300;

/** globalOperations.wait returns after at most this long even if the operation is still running (GCE: 2 min). */
export const OPERATION_WAIT_MS = 120_000;

/** How long the Firebase CLI may take to start its Storage emulator on a busy two-core machine. */
export const STORAGE_START_TIMEOUT_MS = 90_000;

/**
 * The Firebase Storage emulator reads a request body whole, 130 MB at most (its body parser's limit): a
 * resumable upload completed through it cannot be larger.
 */
export const FIREBASE_MAX_OBJECT = 130 * 1000 * 1000;

/** Cloud Storage wants every resumable chunk but the last in multiples of 256 KiB. */
export const RESUMABLE_GRANULE = 256 * 1024;

/** Largest Compute request body accepted (an image resource is a few KiB). */
export const MAX_COMPUTE_BODY = 1024 * 1024;

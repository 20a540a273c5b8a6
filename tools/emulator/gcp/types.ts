/** Shapes of the Google Cloud emulator's handle and of what its standalone entry prints (plain JSON). */

export interface GcpEmulatorOptions {
  /** The one project the emulator serves (default demo-plume-images). */
  project?: string;
  /** How long an inserted image stays PENDING once its archive was read (default 50 ms). */
  pendingMs?: number;
  /** Items per page of images.list (default 500). */
  listPageSize?: number;
  /** Seed for fault probabilities (default 1). */
  seed?: number;
  /** Ports of the two fronts (default: free ones). */
  computePort?: number;
  storagePort?: number;
}

/** Options to spread into a @google-cloud/compute client (ImagesClient...) to reach the fake over HTTP. */
export interface ComputeClientOptions {
  apiEndpoint: string;
  port: number;
  protocol: 'http';
  fallback: true;
}

/** Everything a client in any process needs to reach the emulator. */
export interface GcpEndpoints {
  project: string;
  /** A service account's JSON key file (mode 0600) whose token_uri is the emulator's token endpoint. */
  keyFilePath: string;
  /** The service account's email. */
  clientEmail: string;
  endpoints: {
    /** http://127.0.0.1:PORT: Compute Engine's API root (and the token endpoint, /token). */
    compute: string;
    /** http://127.0.0.1:PORT: Cloud Storage's JSON API root, `apiEndpoint` of @google-cloud/storage. */
    storage: string;
    computeClient: ComputeClientOptions;
    /** The token endpoint the key file names. */
    token: string;
    /** The Firebase Storage emulator itself, past the proxy (for debugging). */
    firebaseStorage: string;
  };
  /** Where the control API (/__emulator/) answers. */
  controlEndpoint: string;
}

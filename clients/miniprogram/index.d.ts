// Type declarations for minisession-miniprogram (src/index.js, src/index.mjs).

/** A host's API object (wx, qq, tt, swan, ks, my, uni, Taro) or an adapter made by `adapters`. */
export type Host = object | Adapter;

export interface Adapter {
  request(options: object, done: (error: MinisessionError | null, res?: Response) => void): unknown;
  login(done: (error: MinisessionError | null, code?: string) => void): void;
  upload(options: object, done: (error: MinisessionError | null, res?: Response) => void): unknown;
  download(options: object, done: (error: MinisessionError | null, res?: DownloadResult) => void): unknown;
  get(key: string): string | null | undefined;
  set(key: string, value: string): void;
  remove(key: string): void;
}

export interface ClientOptions {
  /** The minisession server, e.g. "https://api.example.com" (no trailing path needed). */
  baseURL: string;
  /** App name on a multi-app server: logs in at POST /login/{app} instead of POST /login. */
  app?: string;
  /** Request header that carries the session id; the server's session.header_name. Default "X-Session". */
  header?: string;
  /** Storage key of the session id. Default "minisession". */
  storageKey?: string;
  /** Milliseconds before a request fails with code "timeout". Default 10000. */
  timeout?: number;
  /** The host API; found among the globals my, wx, qq, tt, swan, ks when left out. Pass uni or Taro explicitly. */
  host?: Host;
}

export interface Response<T = any> {
  status: number;
  header: Record<string, string | string[]>;
  data: T;
}

export interface DownloadResult {
  status: number;
  tempFilePath: string;
}

export interface LoginResult {
  session_id: string;
  sessionid: string;
  reused: boolean;
  openid: string;
  unionid?: string;
  bound: boolean;
  user_id: string | null;
  created_at: string;
  expires_at: string;
  expires_in: number;
}

export type SessionInfo = Omit<LoginResult, 'session_id' | 'sessionid' | 'reused'>;

export interface RequestOptions {
  /** A path on baseURL ("/orders") or an absolute URL under baseURL; other origins are refused. */
  url: string;
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD' | 'OPTIONS';
  data?: unknown;
  header?: Record<string, string>;
  [hostOption: string]: unknown;
}

export interface UploadOptions {
  url: string;
  filePath: string;
  name: string;
  formData?: Record<string, unknown>;
  header?: Record<string, string>;
  [hostOption: string]: unknown;
}

export interface DownloadOptions {
  url: string;
  header?: Record<string, string>;
  [hostOption: string]: unknown;
}

export interface Client {
  /** Platform login, then POST /login[/{app}]; the id is read from the JSON body and stored. */
  login(): Promise<LoginResult>;
  /** The host's request with the session header; one shared re-login and one retry on 401. Resolves for any other status. */
  request<T = any>(options: RequestOptions): Promise<Response<T>>;
  /** The stored session id, or null. */
  sessionId(): string | null;
  /** GET /session: the session's details, or null when there is no valid session. */
  session(): Promise<SessionInfo | null>;
  /** DELETE /session, and forget the id. */
  logout(): Promise<void>;
  data: {
    get<T extends object = Record<string, unknown>>(): Promise<T>;
    /** POST /session/data: top-level keys replace, null removes (never PATCH). */
    merge<T extends object = Record<string, unknown>>(data: object): Promise<T>;
    /** PUT /session/data. */
    replace<T extends object = Record<string, unknown>>(data: object): Promise<T>;
  };
  /** POST /platform/phone with the code of a getPhoneNumber button. */
  phone<T = any>(code: string): Promise<T>;
  /** POST /platform/decrypt. */
  decrypt<T = any>(payload: { encryptedData: string; iv: string }): Promise<T>;
  uploadFile<T = any>(options: UploadOptions): Promise<{ status: number; data: T }>;
  downloadFile(options: DownloadOptions): Promise<DownloadResult>;
}

export declare class MinisessionError extends Error {
  /** The server's `error` code (e.g. "invalid_session"), or one of: network_error, timeout,
   * platform_login_failed, method_invalid, foreign_url, no_host, bad_options, http_<status>. */
  code: string;
  /** HTTP status, 0 when there was no answer. */
  status: number;
  /** The server's JSON error body, when there was one. */
  data?: unknown;
}

export declare function createClient(options: ClientOptions): Client;

export declare const adapters: {
  /** For wx and the hosts that mirror it: qq, tt, swan, ks, uni, Taro. */
  wxLike(api: object): Adapter;
  /** For Alipay's my. */
  alipay(api: object): Adapter;
};

declare const _default: {
  createClient: typeof createClient;
  MinisessionError: typeof MinisessionError;
  adapters: typeof adapters;
};
export default _default;

// What both examples start from: a client of the sessiond at SESSIOND_URL, typed by its
// OpenAPI document, and the service key app servers log users in with.

import createClient from "openapi-fetch";
import type { paths } from "./schema.js";

const baseUrl = process.env.SESSIOND_URL ?? "http://127.0.0.1:8080";
// The same variable the server reads its keys from; the first key is used.
const key = process.env.SESSIOND_SERVICE_KEYS?.split(",")[0]?.trim();
if (!key) throw new Error("SESSIOND_SERVICE_KEYS is needed to log users in");
export const serviceKey: string = key;

export const sessiond = createClient<paths>({ baseUrl });
export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
/** Names unique to this run, so that runs against one server do not meet. */
export const run = Date.now().toString(36);

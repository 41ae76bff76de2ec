// Talking to the API with the signed-in caller's bearer token.
import { state } from "./state.js";
import { showSignIn } from "./signin.js";

export class Refused extends Error {}

// Returns the parsed body, or null after handling a 401/403 by returning to the prompt.
export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new Refused("sessiond cannot be reached");
  }
  if (response.status === 401) {
    showSignIn("Your session has ended or the token is not valid. Sign in again.");
    return null;
  }
  if (response.status === 403) {
    const data = await response.json().catch(() => ({}));
    throw new Refused(data.detail || "Not allowed.");
  }
  if (response.status === 204) return {};
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Refused(data.detail || `${response.status} ${response.statusText}`);
  return data;
}

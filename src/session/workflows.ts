import type { SessionData } from '../storage/storage.js'

/**
 * Authelia's portal workflows (docs/authelia-compat.md §2.4): when a signed-in user needs a second factor for an
 * OpenID Connect client, Authelia sends the browser to `/?workflow=openid_connect&workflow_id=<uuid>`
 * and, once `POST /api/secondfactor/totp` names that `workflowID` (4.38+: `flow`/`flowID`), answers
 * with the authorization URL to resume. Scripts written against Authelia follow exactly that, so
 * the id is remembered in the session, for the session's owner only, once, and for ten minutes.
 */
export const WORKFLOW_SECONDS = 600
const MAX_PENDING = 8

interface PendingWorkflow {
  resume: string
  until: number
}

function pending(data: SessionData, now: number): Record<string, PendingWorkflow> {
  const all = (data.extra?.oidcWorkflows ?? {}) as Record<string, PendingWorkflow>
  return Object.fromEntries(Object.entries(all).filter(([, w]) => w.until > now))
}

/** Records `id` → `resume` in the session data (the caller saves the session). */
export function rememberWorkflow(data: SessionData, id: string, resume: string, now: number): void {
  const live = Object.entries(pending(data, now)).slice(-(MAX_PENDING - 1))
  data.extra = { ...data.extra, oidcWorkflows: Object.fromEntries([...live, [id, { resume, until: now + WORKFLOW_SECONDS }]]) }
}

/** The URL to resume for `id`, removed from the session data; undefined when unknown or expired. */
export function takeWorkflow(data: SessionData, id: unknown, now: number): string | undefined {
  if (typeof id !== 'string' || !data.extra?.oidcWorkflows) return undefined
  const live = pending(data, now)
  const found = Object.hasOwn(live, id) ? live[id]!.resume : undefined
  delete live[id]
  data.extra = { ...data.extra, oidcWorkflows: live }
  return found
}

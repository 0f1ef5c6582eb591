import { createHash } from 'node:crypto'
import type { PushedAuthorizationRequest } from '../storage.js'

/** The stored key of a (client, jti) pair: fixed length whatever the jti, and no jti in clear. */
export function jtiKey(clientId: string, jti: string): string {
  return createHash('sha256').update(clientId).update('\n').update(jti).digest('hex')
}

export interface PushedRow {
  request_hash: string
  client_id: string
  form: string
  created_at: number
  expires_at: number
}

export const toPushed = (r: PushedRow): PushedAuthorizationRequest => ({
  requestHash: r.request_hash,
  clientId: r.client_id,
  form: JSON.parse(r.form) as Record<string, string>,
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
})

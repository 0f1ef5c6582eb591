import { describe, expect, test } from 'vitest'
import type { SessionData } from '../storage/storage.js'
import { rememberWorkflow, takeWorkflow, WORKFLOW_SECONDS } from './workflows.js'

const session = (): SessionData => ({ level: 1, amr: ['pwd'], rememberMe: false, csrfToken: 'x', createdAt: 0, lastActivityAt: 0 })

describe('pending OpenID Connect workflows in a session', () => {
  test('an id resumes once, until it expires', () => {
    const data = session()
    rememberWorkflow(data, 'a', 'https://auth.example.com/api/oidc/authorization?x=1', 100)
    rememberWorkflow(data, 'b', 'https://auth.example.com/api/oidc/authorization?x=2', 100)
    expect(takeWorkflow(data, 'a', 100 + WORKFLOW_SECONDS - 1)).toBe('https://auth.example.com/api/oidc/authorization?x=1')
    expect(takeWorkflow(data, 'a', 101)).toBeUndefined()
    expect(takeWorkflow(data, 'b', 100 + WORKFLOW_SECONDS)).toBeUndefined()
  })
  test('non-string and inherited names find nothing; at most 8 are kept, the newest', () => {
    const data = session()
    for (let i = 0; i < 12; i++) rememberWorkflow(data, `id${i}`, `u${i}`, 100)
    expect(Object.keys(data.extra!.oidcWorkflows as object)).toHaveLength(8)
    expect(takeWorkflow(data, 'id3', 100)).toBeUndefined()
    expect(takeWorkflow(data, 'id11', 100)).toBe('u11')
    for (const id of [undefined, 42, ['id10'], '__proto__', 'constructor', 'toString']) expect(takeWorkflow(data, id, 100)).toBeUndefined()
    expect(takeWorkflow(data, 'id10', 100)).toBe('u10')
  })
})

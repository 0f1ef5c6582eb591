/** `access_control`: parsed into the model (forward auth is not served, but 2FA detection reads it). */
import { isIP } from 'node:net'
import { DEFAULTS, type AccessControlConfig, type AccessControlRule, type Policy } from '../schema.js'
import { quoteList, scalarText, type MapView } from '../reader.js'
import type { RawNode } from '../raw.js'

const POLICIES: readonly Policy[] = ['bypass', 'one_factor', 'two_factor', 'deny']
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'TRACE', 'CONNECT', 'OPTIONS', 'COPY', 'LOCK', 'MKCOL', 'MOVE', 'PROPFIND', 'PROPPATCH', 'UNLOCK']

/** `user:x` → [[user:x]]; [a, b] → [[a], [b]] (or); [[a, b]] → [[a, b]] (and). */
function readSubject(rule: MapView, problems: { bad: (msg: string) => void }): string[][] {
  const node = rule.entry('subject')?.node
  if (!node) return []
  const asList = (n: RawNode): string[] | undefined =>
    n.kind === 'scalar' ? [scalarText(n)] : n.kind === 'seq' && n.items.every((i) => i.kind === 'scalar') ? n.items.map((i) => scalarText(i as never)) : undefined
  let out: string[][] | undefined
  if (node.kind === 'scalar') out = [[scalarText(node)]]
  else if (node.kind === 'seq') {
    out = []
    for (const item of node.items) {
      const l = asList(item)
      if (!l) {
        out = undefined
        break
      }
      out.push(l)
    }
  }
  if (!out) {
    problems.bad("option 'subject' must be a string, a list of strings or a list of lists of strings")
    return []
  }
  for (const s of out.flat()) if (!/^(user|group):.+/.test(s)) problems.bad(`option 'subject' has an invalid value '${s}': it must start with 'user:' or 'group:'`)
  return out
}

export function readAccessControl(root: MapView): AccessControlConfig {
  const v = root.map('access_control')
  const defaultPolicy =
    v.oneOf('default_policy', POLICIES, (x) => `option 'default_policy' must be one of ${quoteList(POLICIES)} but it's configured as '${x}'`) ?? (DEFAULTS.accessControl.defaultPolicy as Policy)
  const networks: AccessControlConfig['networks'] = []
  for (const n of v.list('networks')) {
    const name = n.str('name')
    if (!name) n.missing('name', "option 'name' is required")
    networks.push({ name: name ?? '', networks: n.strings('networks') ?? [] })
  }
  const names = new Set(networks.map((n) => n.name))
  const rules: AccessControlRule[] = []
  v.list('rules').forEach((r, i) => {
    const label = `rule #${i + 1}`
    const domain = r.strings('domain') ?? []
    const domainRegex = r.strings('domain_regex') ?? []
    if (domain.length === 0 && domainRegex.length === 0) r.problems.error(r.path, `${label}: rule is invalid: must have the option 'domain' or 'domain_regex' configured`, r.src)
    for (const [idx, re] of domainRegex.entries()) {
      try {
        new RegExp(re)
      } catch {
        r.problems.error(`${r.path}.domain_regex[${idx}]`, `${label}: option 'domain_regex' has an invalid regular expression '${re}'`, r.srcOf('domain_regex'))
      }
    }
    let policy: Policy | undefined
    if (!r.has('policy')) r.missing('policy', `${label}: option 'policy' is required`)
    else policy = r.oneOf('policy', POLICIES, (x) => `${label}: option 'policy' must be one of ${quoteList(POLICIES)} but it's configured as '${x}'`)
    const subject = readSubject(r, { bad: (msg) => r.error('subject', `${label}: ${msg}`) })
    if (policy === 'bypass' && subject.length > 0) r.error('policy', `${label}: 'policy' option 'bypass' is not supported when 'subject' option is configured`)
    const ruleNetworks = r.strings('networks') ?? []
    for (const n of ruleNetworks) {
      const ip = n.split('/')[0]!
      if (!names.has(n) && isIP(ip) === 0) r.error('networks', `${label}: the network '${n}' is not a valid network or network name`)
    }
    const methods = (r.strings('methods') ?? []).map((m) => m.toUpperCase())
    for (const m of methods) if (!METHODS.includes(m)) r.error('methods', `${label}: option 'methods' must only have the values ${quoteList(METHODS)} but the values '${m}' are present`)
    rules.push({ domain, domainRegex, policy: policy ?? 'deny', subject, networks: ruleNetworks, resources: r.strings('resources') ?? [], methods })
  })
  if (rules.length === 0 && defaultPolicy === 'deny')
    v.error('default_policy', "'default_policy' option 'deny' is invalid: when no rules are specified it must be 'two_factor' or 'one_factor'", 'set default_policy: two_factor; OIDC clients have their own authorization_policy')
  return { defaultPolicy, networks, rules }
}

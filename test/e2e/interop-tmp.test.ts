import { test } from 'vitest'
import { doctorCommand } from '../../src/cli/doctor.js'
test('show', async () => {
  let out = ''
  const code = await doctorCommand(['--config', '/work/shared/fixtures/kasm-authelia.yml'], { stdout: (t) => void (out += t), stderr: (t) => void (out += t), env: {}, cwd: '/work/main' })
  console.log(out, code)
})

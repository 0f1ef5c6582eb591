import type { Transporter } from 'nodemailer'
import type { SmtpConfig } from '../config/schema.js'
import type { Notifier } from './notifier.js'

const TLS_VERSIONS = { 'TLS1.0': 'TLSv1', 'TLS1.1': 'TLSv1.1', 'TLS1.2': 'TLSv1.2', 'TLS1.3': 'TLSv1.3' } as const

/**
 * `notifier.smtp` through nodemailer. `smtps` = implicit TLS (usually port 465); `smtp` and
 * `submission` upgrade with STARTTLS, which is required unless `disable_require_tls`, and never
 * attempted with `disable_starttls`.
 * nodemailer is loaded with the first use: most installations use the filesystem notifier, and
 * its import alone is a tenth of the start-up budget.
 */
export class SmtpNotifier implements Notifier {
  private transportPromise?: Promise<Transporter>

  constructor(private readonly config: SmtpConfig) {}

  private transport(): Promise<Transporter> {
    return (this.transportPromise ??= import('nodemailer').then(({ default: nodemailer }) => this.createTransport(nodemailer)))
  }

  private createTransport(nodemailer: typeof import('nodemailer').default): Transporter {
    const config = this.config
    const implicitTls = config.scheme === 'smtps'
    return nodemailer.createTransport({
      host: config.host,
      port: config.port,
      secure: implicitTls,
      requireTLS: !implicitTls && !config.disableStarttls && !config.disableRequireTls,
      ignoreTLS: !implicitTls && config.disableStarttls,
      name: config.identifier,
      connectionTimeout: config.timeoutSeconds * 1000,
      greetingTimeout: config.timeoutSeconds * 1000,
      socketTimeout: config.timeoutSeconds * 1000,
      ...(config.username ? { auth: { user: config.username, pass: config.password ?? '' } } : {}),
      tls: {
        ...(config.tls.serverName ? { servername: config.tls.serverName } : {}),
        rejectUnauthorized: !config.tls.skipVerify,
        minVersion: TLS_VERSIONS[config.tls.minimumVersion],
      },
    })
  }

  async send(message: { to: string; toName?: string; title: string; text: string; html?: string }): Promise<void> {
    await (await this.transport()).sendMail({
      from: this.config.sender,
      to: message.toName ? { name: message.toName, address: message.to } : message.to,
      subject: this.config.subject.replace('{title}', message.title),
      text: message.text,
      ...(message.html && !this.config.disableHtmlEmails ? { html: message.html } : {}),
    })
  }

  async check(): Promise<void> {
    try {
      await (await this.transport()).verify()
    } catch (err) {
      throw new Error(`notifier: smtp: cannot reach ${this.config.host}:${this.config.port}: ${(err as Error).message}`)
    }
  }

  close(): void {
    void this.transportPromise?.then((t) => t.close())
  }
}

/**
 * Where alerts go: Alertmanager's configuration built from the stack's `observability.alerting`, as pure builders.
 *
 * The configuration itself holds no credential. Each one (SMTP password, Slack webhook URL, PagerDuty routing key,
 * Opsgenie API key, webhook bearer token) is a key of one Secret, which the Prometheus Operator mounts into the
 * Alertmanager pods (`alertmanagerSpec.secrets`: /etc/alertmanager/secrets/<secret>/<key>), and the configuration
 * names the file with Alertmanager's `*_file` fields. The Helm values, which Pulumi and Helm keep in clear, therefore
 * never see a credential. The integration suite builds the same configuration with a directory of its own.
 */
import { AlertingConfig, AlertReceiverConfig } from "../config/schema";
import type { Severity } from "./alerts";

/** The Secret that holds the receivers' credentials, in the monitoring namespace. */
export const alertmanagerCredentialsSecret = "korthweb-alertmanager-credentials";
/** Where the Prometheus Operator mounts a Secret listed in an Alertmanager's `spec.secrets`. */
export const alertmanagerSecretsDirectory = `/etc/alertmanager/secrets/${alertmanagerCredentialsSecret}`;
/** Alerts no receiver takes end here. The configuration check makes sure no korthweb alert does. */
export const unroutedReceiver = "unrouted";

/** Keys of the credentials Secret. */
export const credentialKeys = {
    smtpPassword: "smtp-password",
    webhookBearerToken: (receiver: string) => `${receiver}-webhook-bearer-token`,
    slackWebhookUrl: (receiver: string) => `${receiver}-slack-webhook-url`,
    pagerdutyRoutingKey: (receiver: string) => `${receiver}-pagerduty-routing-key`,
    opsgenieApiKey: (receiver: string) => `${receiver}-opsgenie-api-key`,
} as const;

/** Every credential of the alerting configuration, by Secret key. */
export function alertmanagerCredentials(alerting: AlertingConfig): Record<string, string> {
    const credentials: Record<string, string> = {};
    if (alerting.smtp?.password !== undefined) credentials[credentialKeys.smtpPassword] = alerting.smtp.password;
    for (const receiver of alerting.receivers) {
        if (receiver.webhook?.bearerToken !== undefined) credentials[credentialKeys.webhookBearerToken(receiver.name)] = receiver.webhook.bearerToken;
        if (receiver.slack) credentials[credentialKeys.slackWebhookUrl(receiver.name)] = receiver.slack.webhookUrl;
        if (receiver.pagerduty) credentials[credentialKeys.pagerdutyRoutingKey(receiver.name)] = receiver.pagerduty.routingKey;
        if (receiver.opsgenie) credentials[credentialKeys.opsgenieApiKey(receiver.name)] = receiver.opsgenie.apiKey;
    }
    return credentials;
}

const severities: Severity[] = ["critical", "warning"];

/** A PromQL-style regular expression matching exactly these values. */
const anyOf = (values: string[]) => values.map((value) => value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");

function receiverRoute(receiver: AlertReceiverConfig): Record<string, unknown> {
    return {
        receiver: receiver.name,
        // Without `tenants`, every tenant's, present and future: adding a tenant changes nothing here.
        matchers: [`severity=~"${anyOf(receiver.severities ?? severities)}"`, `tenant=~"${receiver.tenants ? anyOf(receiver.tenants) : ".+"}"`],
        // Every receiver whose filters match gets the alert, not only the first.
        continue: true,
    };
}

function receiverConfig(receiver: AlertReceiverConfig, secretsDirectory: string): Record<string, unknown> {
    const file = (key: string) => `${secretsDirectory}/${key}`;
    const config: Record<string, unknown> = { name: receiver.name };
    if (receiver.email) {
        config.email_configs = receiver.email.to.map((to) => ({ to, send_resolved: true }));
    }
    if (receiver.webhook) {
        config.webhook_configs = [
            {
                url: receiver.webhook.url,
                send_resolved: true,
                ...(receiver.webhook.bearerToken !== undefined
                    ? { http_config: { authorization: { type: "Bearer", credentials_file: file(credentialKeys.webhookBearerToken(receiver.name)) } } }
                    : {}),
            },
        ];
    }
    if (receiver.slack) {
        config.slack_configs = [
            {
                api_url_file: file(credentialKeys.slackWebhookUrl(receiver.name)),
                send_resolved: true,
                ...(receiver.slack.channel ? { channel: receiver.slack.channel } : {}),
                title: '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.tenant }})',
                text: "{{ range .Alerts }}{{ .Annotations.summary }}: {{ .Annotations.description }}\n{{ end }}",
            },
        ];
    }
    if (receiver.pagerduty) {
        config.pagerduty_configs = [{ routing_key_file: file(credentialKeys.pagerdutyRoutingKey(receiver.name)), send_resolved: true }];
    }
    if (receiver.opsgenie) {
        config.opsgenie_configs = [
            {
                api_key_file: file(credentialKeys.opsgenieApiKey(receiver.name)),
                ...(receiver.opsgenie.apiUrl ? { api_url: receiver.opsgenie.apiUrl } : {}),
                // Opsgenie's priorities: P1 for what stops a site, P3 for what degrades it.
                priority: '{{ if eq .CommonLabels.severity "critical" }}P1{{ else }}P3{{ end }}',
                tags: "korthweb,{{ .CommonLabels.tenant }}",
                send_resolved: true,
            },
        ];
    }
    return config;
}

export interface AlertmanagerConfigInput {
    alerting: AlertingConfig;
    /** Where the credential files are: the mounted Secret in the cluster, a temp directory in the integration suite. */
    secretsDirectory?: string;
    /** Grouping delays; the cluster's defaults unless a test needs seconds. */
    timing?: { groupWait: string; groupInterval: string; repeatInterval: string };
}

/** Grouping and repetition as in the chart's defaults: a first notification after 30 s, repeated every 12 h. */
export const defaultRouteTiming = { groupWait: "30s", groupInterval: "5m", repeatInterval: "12h" };

/**
 * Alertmanager's whole configuration (every top-level key set, so nothing of the chart's default configuration
 * survives Helm's merge of values: see tests/upstream/monitoring.ts). Routes by severity and tenant: each receiver
 * takes the alerts of its severities and tenants. A critical alert silences the warnings of the same alert name and
 * tenant while it fires.
 */
export function alertmanagerConfig(input: AlertmanagerConfigInput): Record<string, unknown> {
    const { alerting } = input;
    const secretsDirectory = input.secretsDirectory ?? alertmanagerSecretsDirectory;
    const timing = input.timing ?? defaultRouteTiming;
    const smtp = alerting.smtp;
    return {
        global: {
            resolve_timeout: "5m",
            ...(smtp
                ? {
                      smtp_smarthost: smtp.smarthost,
                      smtp_from: smtp.from,
                      smtp_require_tls: true,
                      ...(smtp.username !== undefined ? { smtp_auth_username: smtp.username } : {}),
                      ...(smtp.password !== undefined ? { smtp_auth_password_file: `${secretsDirectory}/${credentialKeys.smtpPassword}` } : {}),
                  }
                : {}),
        },
        route: {
            receiver: unroutedReceiver,
            group_by: ["alertname", "tenant", "namespace"],
            group_wait: timing.groupWait,
            group_interval: timing.groupInterval,
            repeat_interval: timing.repeatInterval,
            routes: alerting.receivers.map(receiverRoute),
        },
        inhibit_rules: [{ source_matchers: ['severity="critical"'], target_matchers: ['severity="warning"'], equal: ["alertname", "tenant"] }],
        receivers: [{ name: unroutedReceiver }, ...alerting.receivers.map((receiver) => receiverConfig(receiver, secretsDirectory))],
        templates: [],
    };
}

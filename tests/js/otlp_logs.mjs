// Exports 20 log records to seclog with the OpenTelemetry JS SDK (OTLP/HTTP JSON).
// Usage: node otlp_logs.mjs URL TOKEN
import { LoggerProvider, BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SeverityNumber } from '@opentelemetry/api-logs';

const [url, token] = process.argv.slice(2);
const exporter = new OTLPLogExporter({ url, headers: { Authorization: `Bearer ${token}` } });
const provider = new LoggerProvider({
  resource: resourceFromAttributes({ 'service.name': 'web-frontend' }),
  processors: [new BatchLogRecordProcessor(exporter)],
});
const logger = provider.getLogger('cart');
for (let index = 0; index < 20; index++) {
  logger.emit({
    severityNumber: SeverityNumber.ERROR,
    severityText: 'ERROR',
    body: `checkout failed ${index}`,
    attributes: { 'http.route': '/cart', 'attempt': index },
  });
}
await provider.shutdown();

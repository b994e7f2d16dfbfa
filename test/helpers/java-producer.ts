/**
 * Produces records with Kafka's own Java client, from the broker's jars (`.local/kafka/libs`), for what kafkajs cannot
 * write: a header with no value (null), which Java producers send. Java runs the one-file program below from source.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const libs = resolve(import.meta.dirname, '../../.local/kafka/libs');

/** Whether this machine can run it: a JDK, and the broker's jars (`scripts/kafka/kafka.sh fetch`). */
export function javaProducerAvailable(): boolean {
  if (!existsSync(libs) || !readdirSync(libs).some((f) => f.startsWith('kafka-clients-'))) return false;
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false; // no java on PATH
  }
}

// Reads records from stdin, one per line: key, value, then headers, separated by tabs; a header without `=` has no
// value. Each send is waited for, so the records land in order.
const source = `
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.header.internals.RecordHeader;

public class JavaProducer {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.put("bootstrap.servers", args[0]);
    props.put("acks", "all");
    props.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
    props.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(props);
         BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
      for (String line; (line = in.readLine()) != null; ) {
        String[] fields = line.split("\\t", -1);
        ProducerRecord<String, String> record = new ProducerRecord<>(args[1], fields[0], fields[1]);
        for (int i = 2; i < fields.length; i++) {
          int eq = fields[i].indexOf('=');
          record.headers().add(eq < 0
              ? new RecordHeader(fields[i], (byte[]) null)
              : new RecordHeader(fields[i].substring(0, eq), fields[i].substring(eq + 1).getBytes(StandardCharsets.UTF_8)));
        }
        producer.send(record).get();
      }
    }
  }
}
`;

export interface JavaRecord {
  key: string;
  value: string;
  /** A null value is a header with no value. */
  headers?: Array<[string, string | null]>;
}

export async function produceWithJavaClient(brokers: string[], topic: string, records: JavaRecord[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-java-producer-'));
  const file = join(dir, 'JavaProducer.java');
  writeFileSync(file, source);
  const lines = records.map((r) => [r.key, r.value, ...(r.headers ?? []).map(([name, value]) => (value === null ? name : `${name}=${value}`))].join('\t'));
  try {
    await new Promise<void>((done, fail) => {
      // Well within a test's time, so that a stuck JVM is killed before the test gives up.
      const child = execFile('java', ['-cp', `${libs}/*`, file, brokers.join(','), topic], { timeout: 60_000 }, (error, _stdout, stderr) =>
        error ? fail(new Error(`the Java producer failed: ${String(error)}\n${stderr}`)) : done(),
      );
      // A JVM that ends before reading its input closes the pipe: the exit, reported above, says why.
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(`${lines.join('\n')}\n`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

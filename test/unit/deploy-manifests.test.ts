import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { environmentSettings, readConfig, secretSettings } from '../../src/config/load-config.js';
import { defaults } from '../../src/config/options.js';
import { resolveOptions } from '../../src/config/resolve-options.js';
import { HealthServer } from '../../src/http/health-server.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const hasKubectl = (() => {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

type Obj = { apiVersion: string; kind: string; metadata: { name: string }; [key: string]: unknown };
/* eslint-disable @typescript-eslint/no-explicit-any -- rendered manifests are read as plain JSON */
type Any = any;

function render(dir: string): Obj[] {
  const text = execFileSync('kubectl', ['kustomize', join(root, dir)], { encoding: 'utf8' });
  return parseAllDocuments(text).map((d) => d.toJS() as Obj);
}

/**
 * Every object checked against the Kubernetes (and KEDA) schemas: validate() throws on a field of the wrong type or
 * shape, or a missing required one. It does not reject an unknown (misspelt) field name: the checks below read the
 * fields that matter by name, so a misspelt one fails them instead.
 */
function validate(object: Obj): void {
  const models: Record<string, new (o: Any) => { validate(): void }> = {
    'apps/v1 Deployment': Deployment,
    'v1 Service': Service,
    'v1 ConfigMap': ConfigMap,
    'policy/v1 PodDisruptionBudget': PodDisruptionBudget,
    'keda.sh/v1alpha1 ScaledObject': ScaledObject,
  };
  const model = models[`${object.apiVersion} ${object.kind}`];
  if (!model) throw new Error(`no schema for ${object.apiVersion} ${object.kind}: add one`);
  new model(object).validate();
}

const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');

describe('the Dockerfile (checked statically: no Docker engine here)', () => {
  it('pins its base images, runs production dependencies only, as a numeric user, node started directly, on the HTTP port', () => {
    const from = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!);
    expect(from).toHaveLength(2); // build, then runtime
    for (const image of from) expect(image).toMatch(/^node:\d+\.\d+\.\d+-[a-z]+-slim$/);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    // The runtime stage has what dist/cli.js loads: dist, node_modules, and package.json one level up (version.ts).
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(runtime).toMatch(/^WORKDIR \/app$/m);
    for (const path of ['package.json', 'node_modules', 'dist']) expect(runtime).toMatch(new RegExp(`^COPY --from=build /app/${path} \\./${path}$`, 'm'));
    expect(dockerfile).toMatch(/^USER 1000:1000$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "dist\/cli\.js"\]$/m);
    expect(dockerfile).not.toMatch(/^(ENTRYPOINT|CMD).*npm/m);
    expect(Number(/^EXPOSE (\d+)$/m.exec(dockerfile)?.[1])).toBe(defaults.httpPort);
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(ignored[0]).toBe('*'); // everything but what is named: no node_modules, .local, .git or secrets in the context
  });
});

describe.skipIf(!hasKubectl)('the Kubernetes manifests (kubectl kustomize)', () => {
  for (const dir of ['deploy/kubernetes/base', 'deploy/kubernetes/overlays/example']) {
    it(`${dir}: every object valid, and every port, path, variable and file one sluice really serves or reads`, async () => {
      const objects = render(dir);
      for (const object of objects) validate(object);
      const find = <T = Any>(kind: string) => objects.find((o) => o.kind === kind) as T;
      const deployment = find('Deployment');
      const pod = deployment.spec.template.spec;
      const [container] = pod.containers;

      // The settings file, as the pod mounts it, is one sluice accepts.
      const config = find('ConfigMap');
      const configPath: string = container.env.find((e: Any) => e.name === 'SLUICE_CONFIG').value;
      const configMount = container.volumeMounts.find((m: Any) => configPath.startsWith(`${m.mountPath}/`));
      const configVolume = pod.volumes.find((v: Any) => v.name === configMount.name);
      expect(configVolume.configMap.name).toBe(config.metadata.name);
      const fileName = configPath.slice(configMount.mountPath.length + 1);
      const tmp = mkdtempSync(join(tmpdir(), 'sluice-manifest-'));
      writeFileSync(join(tmp, fileName), config.data[fileName]);
      const { options, sources } = readConfig({ SLUICE_CONFIG: join(tmp, fileName), DATABASE_URL: 'postgres://sluice@db/app' });
      const resolved = resolveOptions(options, sources);

      // Variables: each one sluice (or the OpenTelemetry SDK) reads.
      const known = new Set<string>([...Object.keys(environmentSettings), ...[...secretSettings].map((s) => `${s}_FILE`), 'SLUICE_CONFIG']);
      for (const { name } of container.env) expect(known.has(name) || name.startsWith('OTEL_'), `${name} is read by sluice`).toBe(true);
      // Secret files: under a mounted Secret directory (never subPath, which a rotation never reaches).
      for (const { name, value } of container.env.filter((e: Any) => e.name.endsWith('_FILE'))) {
        const mount = container.volumeMounts.find((m: Any) => value.startsWith(`${m.mountPath}/`));
        expect(mount, `${name}=${value} is mounted`).toBeDefined();
        expect(pod.volumes.find((v: Any) => v.name === mount.name).secret, `${name} comes from a Secret`).toBeDefined();
      }
      for (const mount of container.volumeMounts) expect(mount.subPath, mount.name).toBeUndefined();

      // The port and probe paths: the ones sluice listens on and serves (a real HealthServer answers them).
      const port = container.ports.find((p: Any) => p.name === 'http').containerPort;
      expect(port).toBe(resolved.http.port);
      const server = new HealthServer({ alive: () => true, readiness: () => ({ ready: true, reasons: [] }), status: () => ({}), metrics: (_q, r) => r.end('') }, pino({ level: 'silent' }));
      const address = await server.listen(0, '127.0.0.1');
      try {
        const paths = [container.livenessProbe, container.readinessProbe, container.startupProbe].map((p: Any) => p.httpGet.path);
        paths.push(deployment.spec.template.metadata.annotations['prometheus.io/path']);
        for (const path of paths) expect((await fetch(`http://127.0.0.1:${address.port}${path}`)).status, path).toBe(200);
      } finally {
        await server.close();
      }
      for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) expect(probe.httpGet.port).toBe('http');
      expect(Number(deployment.spec.template.metadata.annotations['prometheus.io/port'])).toBe(port);
      expect(find('Service').spec.ports[0].targetPort).toBe('http');

      // The restricted pod security standard, and a root filesystem sluice never writes.
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
      expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      expect(pod.volumes.find((v: Any) => v.name === container.volumeMounts.find((m: Any) => m.mountPath === '/tmp').name).emptyDir).toBeDefined();
      expect(dockerfile).toMatch(new RegExp(`^USER ${pod.securityContext.runAsUser}:`, 'm'));
      // The kubelet waits longer than sluice's own shutdown takes.
      expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(resolved.shutdownGraceMs);

      const pdb = find('PodDisruptionBudget');
      expect(pdb.spec).toMatchObject({ maxUnavailable: 1, unhealthyPodEvictionPolicy: 'AlwaysAllow' });
      expect(deployment.spec.template.metadata.labels).toMatchObject(pdb.spec.selector.matchLabels);

      // Autoscaling on the lag of the group and topics this sluice really consumes, from one replica up.
      const scaled = find('ScaledObject');
      expect(scaled.spec.scaleTargetRef.name).toBe(deployment.metadata.name);
      expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
      expect(scaled.spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds).toBeGreaterThan(0);
      for (const trigger of scaled.spec.triggers) {
        expect(trigger.type).toBe('kafka');
        expect(trigger.metadata).toMatchObject({ excludePersistentLag: 'true', consumerGroup: resolved.kafka.groupId, offsetResetPolicy: resolved.kafka.startFrom });
        expect(resolved.routes.map((r) => r.topic)).toContain(trigger.metadata.topic);
        expect(trigger.metadata.bootstrapServers.split(',')).toEqual(resolved.kafka.brokers);
        expect(Number(trigger.metadata.lagThreshold)).toBeGreaterThan(0);
      }
      // Every routed topic's lag counts.
      expect(resolved.routes.map((r) => r.topic).sort()).toEqual(scaled.spec.triggers.map((t: Any) => t.metadata.topic).sort());
      expect(scaled.spec.fallback.replicas).toBeGreaterThanOrEqual(scaled.spec.minReplicaCount);
    });
  }
});

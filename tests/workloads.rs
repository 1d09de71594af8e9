//! Every catalog workload really runs on the node, from the node's local
//! images (the dev defaults of the catalog): PostgreSQL gets a dynamically
//! provisioned volume, becomes Ready because its server accepts
//! connections, a client in the toolbox logs in with the password from the
//! generated Secret, and its data outlives a restart of its pod; the
//! scheduled job's runs complete; the toolbox has the tools people reach for.
//! Clients connect by pod IP.

mod common;

use std::time::Duration;

use common::{deployment, shared_with_operator};
use futures::StreamExt;
use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, Secret},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, PostParams},
    runtime::{WatchStreamExt, wait::await_condition, watcher},
};
use portico::{api::Deployment, controlplane::node::storage};
use serde_json::json;

const ALICE: (&str, &[&str]) = ("alice", &["developers", "system:authenticated"]);

async fn admin() -> Client {
    shared_with_operator().admin_client().await.unwrap()
}

async fn create_as_alice(ns: &str, d: &Deployment) -> Result<Deployment, kube::Error> {
    let alice = shared_with_operator().client_as(ALICE.0, ALICE.1).await.unwrap();
    Api::<Deployment>::namespaced(alice, ns)
        .create(&PostParams::default(), d)
        .await
}

/// Waits (through a watch) until the Deployment satisfies `cond`.
async fn wait_for(ns: &str, name: &str, what: &str, secs: u64, cond: impl Fn(&Deployment) -> bool) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(admin().await, ns);
    match tokio::time::timeout(
        Duration::from_secs(secs),
        await_condition(api.clone(), name, move |d: Option<&Deployment>| d.is_some_and(&cond)),
    )
    .await
    {
        Ok(Ok(Some(d))) => d,
        other => panic!(
            "{ns}/{name}: {what} did not happen: {other:?}; now {:?}\n{}",
            api.get_opt(name).await.map(|d| d.map(|d| d.status)),
            common::kubectl(&["describe", "pods", "-n", ns]).stdout.escape_ascii()
        ),
    }
}

fn ready(d: &Deployment) -> bool {
    d.status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A toolbox pod that waits, with `env`; returns once it is Ready.
async fn toolbox(ns: &str, name: &str, env: serde_json::Value) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "toolbox", "image": common::TOOLBOX, "env": env,
                "command": ["sleep", "infinity"],
            }],
        },
    }))
    .unwrap();
    Api::<Pod>::namespaced(admin().await, ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    common::wait_pod_ready(&admin().await, ns, name).await;
}

/// `kubectl exec` in the pod: exit status, stdout, stderr.
fn exec(ns: &str, pod: &str, script: &str) -> (bool, String, String) {
    let out = common::kubectl(&["exec", "-n", ns, pod, "--", "bash", "-c", script]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn exec_ok(ns: &str, pod: &str, script: &str) -> String {
    let (ok, out, err) = exec(ns, pod, script);
    assert!(ok, "`{script}` in {ns}/{pod} failed: {err}\n{out}");
    out
}

async fn pod_ip(ns: &str, name: &str) -> String {
    let pod = Api::<Pod>::namespaced(admin().await, ns).get(name).await.unwrap();
    pod.status.and_then(|s| s.pod_ip).expect("a pod IP")
}

#[tokio::test]
async fn alice_deploys_postgresql_and_a_client_logs_in_with_the_generated_password() {
    let ns = "team-a";
    create_as_alice(ns, &deployment("db", "postgresql", json!({})))
        .await
        .unwrap();
    // Ready because the StatefulSet's pod runs and its readiness probe
    // (pg_isready) passes: the server accepts connections on its volume.
    wait_for(ns, "db", "Ready", 180, ready).await;

    // The volume claim got a volume from the default StorageClass.
    let claim = Api::<PersistentVolumeClaim>::namespaced(admin().await, ns)
        .get("data-db-0")
        .await
        .unwrap();
    let spec = claim.spec.unwrap();
    assert_eq!(spec.storage_class_name.as_deref(), Some(storage::STORAGE_CLASS));
    assert_eq!(claim.status.unwrap().phase.as_deref(), Some("Bound"));
    let pv = Api::<PersistentVolume>::all(admin().await)
        .get(&spec.volume_name.unwrap())
        .await
        .unwrap();
    let path = pv.spec.unwrap().host_path.unwrap().path;
    assert!(path.starts_with(&format!("{}/", storage::VOLUME_DIR)), "{path}");
    assert!(
        std::path::Path::new(&path).join("pgdata/PG_VERSION").is_file(),
        "the data directory is on the volume at {path}"
    );

    let log = common::kubectl_ok(&["logs", "-n", ns, "db-0"]);
    assert!(log.contains("initialising"), "{log}");
    assert!(log.contains("starting PostgreSQL 15 on port 5432"), "{log}");

    // A client in the toolbox, with the login from the generated Secret.
    let secret = Api::<Secret>::namespaced(admin().await, ns)
        .get("db-credentials")
        .await
        .unwrap();
    let data = secret.data.unwrap();
    let password = String::from_utf8(data["POSTGRES_PASSWORD"].0.clone()).unwrap();
    assert!(password.len() >= 16, "a generated password");
    let from_secret = |var: &str, key: &str| json!({"name": var, "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": key}}});
    let host = pod_ip(ns, "db-0").await;
    toolbox(
        ns,
        "psql-client",
        json!([
            from_secret("PGUSER", "POSTGRES_USER"),
            from_secret("PGPASSWORD", "POSTGRES_PASSWORD"),
            from_secret("PGDATABASE", "POSTGRES_DB"),
            {"name": "PGHOST", "value": host},
        ]),
    )
    .await;
    let who = exec_ok(ns, "psql-client", "psql -Atc 'select current_user, current_database()'");
    assert_eq!(who.trim(), "app|app");
    let sum = exec_ok(
        ns,
        "psql-client",
        "psql -Atc 'create table notes (body text)' -c \"insert into notes values ('kept')\" -c 'select 6 * 7'",
    );
    assert!(sum.trim_end().ends_with("42"), "{sum}");
    // Over TCP the password is checked.
    let (ok, _, err) = exec(ns, "psql-client", "PGPASSWORD=wrong psql -Atc 'select 1'");
    assert!(!ok, "a wrong password is refused");
    assert!(err.contains("password authentication failed for user \"app\""), "{err}");

    // The server stops cleanly and its data outlives the pod: the
    // StatefulSet's new pod starts on the same volume without initialising.
    let pods: Api<Pod> = Api::namespaced(admin().await, ns);
    let old_uid = pods.get("db-0").await.unwrap().uid().unwrap();
    pods.delete("db-0", &DeleteParams::default()).await.unwrap();
    let replaced = await_condition(pods.clone(), "db-0", move |p: Option<&Pod>| {
        p.is_some_and(|p| p.uid().as_deref() != Some(old_uid.as_str()))
    });
    tokio::time::timeout(Duration::from_secs(60), replaced)
        .await
        .expect("the StatefulSet makes a new db-0")
        .unwrap();
    common::wait_pod_ready(&admin().await, ns, "db-0").await;
    let log = common::kubectl_ok(&["logs", "-n", ns, "db-0"]);
    assert!(!log.contains("initialising"), "{log}");
    assert!(
        log.contains("database system was shut down at"),
        "a clean shutdown before: {log}"
    );
    let host = pod_ip(ns, "db-0").await;
    let kept = exec_ok(
        ns,
        "psql-client",
        &format!("PGHOST={host} psql -Atc 'select body from notes'"),
    );
    assert_eq!(kept.trim(), "kept");
}

#[tokio::test]
async fn a_postgresql_image_with_a_tag_is_refused_naming_the_parameter() {
    let e = create_as_alice(
        "team-a",
        &deployment(
            "tagged",
            "postgresql",
            json!({"image": "docker.io/library/postgres:16"}),
        ),
    )
    .await
    .unwrap_err();
    let kube::Error::Api(s) = e else {
        panic!("expected a refusal, got {e:?}")
    };
    assert_eq!(s.code, 422, "{}", s.message);
    assert!(s.message.contains("/image"), "{}", s.message);
}

#[tokio::test]
async fn the_scheduled_job_runs_on_its_schedule_and_a_completed_run_appears() {
    let ns = "team-a";
    create_as_alice(
        ns,
        &deployment(
            "every-minute",
            "scheduled-job",
            json!({"schedule": "* * * * *", "command": ["bash", "-c", "echo scheduled run in $(hostname)"]}),
        ),
    )
    .await
    .unwrap();
    // The CronJob controller starts a Job at the next minute; the node runs
    // its pod in the toolbox; the Job completes.
    let jobs: Api<Job> = Api::namespaced(admin().await, ns);
    let complete = |j: &Job| {
        j.owner_references()
            .iter()
            .any(|o| o.kind == "CronJob" && o.name == "every-minute")
            && j.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Complete" && c.status == "True"))
    };
    let mut stream = watcher(jobs.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let found = tokio::time::timeout(Duration::from_secs(150), async {
        while let Some(j) = stream.next().await {
            if let Ok(j) = j
                && complete(&j)
            {
                return j;
            }
        }
        panic!("the watch ended");
    })
    .await
    .unwrap_or_else(|_| panic!("no completed run within 150 s"));
    let log = common::kubectl_ok(&["logs", "-n", ns, &format!("job/{}", found.name_any())]);
    assert!(log.contains("scheduled run in every-minute-"), "{log}");
    wait_for(ns, "every-minute", "a last run in the outputs", 60, |d| {
        d.status
            .as_ref()
            .is_some_and(|s| s.outputs.get("lastRun").is_some_and(|v| v != "not yet"))
    })
    .await;
}

#[tokio::test]
async fn the_toolbox_has_the_tools_people_reach_for() {
    let ns = "team-a";
    toolbox(ns, "tools", json!([])).await;
    for (check, expect) in [
        ("bash --version", "GNU bash"),
        ("curl --version", "curl "),
        ("echo '{\"answer\": 42}' | jq .answer", "42"),
        ("less --version", "less "),
        ("vim.tiny --version", "VIM - Vi IMproved"),
        ("nano --version", "GNU nano"),
        ("ps -o comm= -p 1", "sleep"),
        ("ip -V", "iproute2"),
        ("ping -V", "iputils"),
        ("dig -v 2>&1", "DiG"),
        ("nc -h 2>&1 | head -1", "OpenBSD netcat"),
        ("psql --version", "psql (PostgreSQL) 15"),
        ("kubectl version --client", "Client Version: v1.36"),
        (
            "test -s /etc/ssl/certs/ca-certificates.crt && echo ca-certificates",
            "ca-certificates",
        ),
    ] {
        let out = exec_ok(ns, "tools", check);
        assert!(out.contains(expect), "`{check}` says {out:?}");
    }
    // curl, the CA bundle of the pod's service account and jq together: the
    // API server answers from inside the pod.
    let server = shared_with_operator().server();
    let version = exec_ok(
        ns,
        "tools",
        &format!(
            "sa=/var/run/secrets/kubernetes.io/serviceaccount; curl -sS --cacert $sa/ca.crt \
             -H \"Authorization: Bearer $(cat $sa/token)\" {server}/version | jq -r .gitVersion"
        ),
    );
    assert!(version.starts_with("v1.36"), "{version}");
    let (host, port) = server.trim_start_matches("https://").split_once(':').unwrap();
    exec_ok(ns, "tools", &format!("nc -z -w 5 {host} {port}"));
}

//! The chart grants the operator nothing it does not use. The operator runs as
//! the chart's service account (as in every operator test, so a missing
//! permission fails), through a representative workload: Terminals in a
//! namespace with a ready pod, in a temporary namespace with a
//! ClusterRoleBinding, in another cluster, and ended by their idle timeout;
//! SessionClaims with grants, deleted and expired; catalog Deployments created
//! and deleted, one stalling twice. Then every rule the chart grants that
//! service account must appear in the API server's audit log as a request the
//! operator made.

mod common;

mod rbac_usage {
    pub mod audit;
    pub mod workload;
}

use std::time::{Duration, Instant};

use futures::FutureExt;

use rbac_usage::{audit, workload};

/// Granted rules no request can show in the audit log, each with why the
/// operator needs it. Keep this list short: everything else must be used.
const NOT_IN_THE_AUDIT_LOG: &[(&str, &str, &str, &str)] = &[
    (
        "",
        "pods/attach",
        "get",
        "granted in every Terminal's attach Role; RBAC lets the operator grant only what it holds",
    ),
    (
        "",
        "pods/attach",
        "create",
        "granted in every Terminal's attach Role; RBAC lets the operator grant only what it holds",
    ),
    (
        "rbac.authorization.k8s.io",
        "clusterroles",
        "bind",
        "checked inside the API server when the operator binds a user's ClusterRole, never a request",
    ),
    (
        "rbac.authorization.k8s.io",
        "roles",
        "bind",
        "checked inside the API server when the operator binds a user's Role, never a request",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_permission_the_chart_grants_the_operator_is_used() {
    let cp = common::shared();
    let (mut operator, other_cluster) = workload::setup(cp).await;
    // A step that fails shows the operator's log with its own message.
    if let Err(panic) = std::panic::AssertUnwindSafe(workload::run(cp, &other_cluster))
        .catch_unwind()
        .await
    {
        eprintln!("--- the operator's log ---\n{}", operator.process.log_tail(80));
        std::panic::resume_unwind(panic);
    }

    let rendered = common::operator::render_chart(cp, "templates/operator-rbac.yaml");
    let grants = audit::operator_grants(&rendered);
    assert!(!grants.is_empty(), "the chart grants the operator nothing?\n{rendered}");
    for (group, resource, verb, _) in NOT_IN_THE_AUDIT_LOG {
        assert!(
            grants
                .iter()
                .any(|g| g.group == *group && g.resource == *resource && g.verb == *verb),
            "NOT_IN_THE_AUDIT_LOG lists {verb} {resource} in group {group:?}, which the chart no longer grants; remove it from the list"
        );
    }
    let checked: Vec<&audit::Grant> = grants
        .iter()
        .filter(|g| {
            !NOT_IN_THE_AUDIT_LOG
                .iter()
                .any(|(group, resource, verb, _)| g.group == *group && g.resource == *resource && g.verb == *verb)
        })
        .collect();

    // The API server logs a watch when it ends: stop the operator, then wait
    // (bounded) for the events of its closed watches to be written.
    operator.process.stop(Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    let (excess, events) = loop {
        let events = cp.audit_events();
        let uses = audit::operator_uses(&events);
        let excess: Vec<String> = checked.iter().filter_map(|g| g.excess(&uses, &grants)).collect();
        if excess.is_empty() || Instant::now() > deadline {
            break (excess, events);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let refused = audit::operator_refusals(&events);
    assert!(
        refused.is_empty(),
        "the API server refused the operator (running with the chart's RBAC) these requests; \
         grant them in charts/portico/templates/operator-rbac.yaml or stop making them:\n{}",
        refused.join("\n")
    );
    assert!(
        excess.is_empty(),
        "charts/portico/templates/operator-rbac.yaml grants the operator's service account \
         permissions the operator did not need while running Terminals, SessionClaims and Deployments:\n{}\n\
         Remove each from the chart (and keep its README true), or, if the operator needs it, \
         make this test's workload exercise it (tests/rbac_usage/workload.rs); only a permission \
         no request can show belongs in NOT_IN_THE_AUDIT_LOG, with the reason.",
        excess.iter().map(|g| format!("  - {g}")).collect::<Vec<_>>().join("\n")
    );
}

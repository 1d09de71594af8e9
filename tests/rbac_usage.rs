//! The chart grants the operator and the dashboard nothing they do not use.
//! Both run as the chart's service accounts (as in every operator and
//! dashboard test, so a missing permission fails). The operator runs a
//! representative workload: Terminals in a namespace with a ready pod, in a
//! temporary namespace with a ClusterRoleBinding, in another cluster, and
//! ended by their idle timeout; SessionClaims with grants, deleted and
//! expired; catalog Deployments created and deleted, one stalling twice.
//! Meanwhile a developer and an admin log in to the dashboard and open every
//! page that reads. Then every rule the chart grants either service account
//! must appear in the API server's audit log as a request it made, and none
//! of its own requests may have been refused.

mod common;

mod rbac_usage {
    pub mod audit;
    pub mod dashboard;
    pub mod workload;
}

use std::time::Duration;

use futures::FutureExt;

use rbac_usage::{
    audit::{Component, ServiceAccount},
    dashboard, workload,
};

const OPERATOR: Component = Component {
    name: "operator",
    template: "templates/operator-rbac.yaml",
    account: ServiceAccount {
        namespace: "portico-system",
        name: "portico-operator",
    },
    not_in_the_audit_log: &[
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
    ],
    doing: "running Terminals, SessionClaims and Deployments",
    exercised_in: "tests/rbac_usage/workload.rs",
};

const DASHBOARD: Component = Component {
    name: "dashboard",
    template: "templates/dashboard-rbac.yaml",
    account: ServiceAccount {
        namespace: "portico-system",
        name: "portico-dashboard",
    },
    not_in_the_audit_log: &[],
    doing: "serving every page that reads to a developer and an admin",
    exercised_in: "tests/rbac_usage/dashboard.rs",
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_permission_the_chart_grants_the_operator_and_the_dashboard_is_used() {
    let cp = common::shared();
    let (mut operator, other_cluster) = workload::setup(cp).await;
    let mut ui = dashboard::start(cp).await;
    let (ran, served) = tokio::join!(
        std::panic::AssertUnwindSafe(workload::run(cp, &other_cluster, operator.metrics_port)).catch_unwind(),
        std::panic::AssertUnwindSafe(dashboard::run(&ui.base)).catch_unwind(),
    );
    // A step that fails shows the log of the component it exercised and what
    // the API server refused it, with its own message.
    for (result, process, component) in [(ran, &operator.process, OPERATOR), (served, &ui.process, DASHBOARD)] {
        if let Err(panic) = result {
            eprintln!(
                "--- {}'s log ---\n{}\n--- refused by the API server so far ---\n{}",
                process.name(),
                process.log_tail(80),
                component.refused(cp).join("\n")
            );
            std::panic::resume_unwind(panic);
        }
    }

    // The API server logs a watch when it ends: stop both first.
    ui.process.stop(Duration::from_secs(30));
    operator.process.stop(Duration::from_secs(30));
    let mut problems = vec![];
    for component in [OPERATOR, DASHBOARD] {
        problems.extend(component.problems(cp).await);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

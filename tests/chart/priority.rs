//! API Priority and Fairness: the operator's own requests land in the
//! chart's priority level; users' do not, except their rules reviews and
//! their writes of Portico's objects, which have levels of their own.

use crate::*;

async fn classified(client: &kube::Client) -> (String, String) {
    let req = http::Request::get("/version").body(Vec::new()).unwrap();
    classified_request(client, req).await
}

/// As [`classified`], for `req`.
async fn classified_request(client: &kube::Client, req: http::Request<Vec<u8>>) -> (String, String) {
    let resp = client.send(req.map(Into::into)).await.unwrap();
    let header = |h: &str| {
        resp.headers()
            .get(h)
            .unwrap_or_else(|| panic!("no {h} header"))
            .to_str()
            .unwrap()
            .to_string()
    };
    (
        header("X-Kubernetes-PF-FlowSchema-UID"),
        header("X-Kubernetes-PF-PriorityLevel-UID"),
    )
}

/// The UIDs of the chart's FlowSchema `name` and of its priority level
/// (also named `name`), as [`classified`] reports them.
async fn flow(admin: &kube::Client, name: &str) -> (String, String) {
    use k8s_openapi::api::flowcontrol::v1::{FlowSchema, PriorityLevelConfiguration};
    let schema = kube::Api::<FlowSchema>::all(admin.clone()).get(name).await.unwrap();
    let level = kube::Api::<PriorityLevelConfiguration>::all(admin.clone())
        .get(name)
        .await
        .unwrap();
    assert_eq!(schema.spec.as_ref().unwrap().priority_level_configuration.name, name);
    (schema.metadata.uid.unwrap(), level.metadata.uid.unwrap())
}

#[tokio::test]
async fn the_operators_own_requests_get_the_charts_priority_level_and_users_do_not() {
    let kc = common::operator::chart_kubeconfig(shared()).await;
    let kc = kube::config::Kubeconfig::read_from(&kc).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let operator = kube::Client::try_from(config).unwrap();
    let admin = common::admin().await;
    let (schema, level) = flow(&admin, "portico-operator").await;
    let (fs, pl) = classified(&operator).await;
    assert_eq!(fs, schema, "the operator's FlowSchema");
    assert_eq!(pl, level, "the operator's priority level");
    // A user, and the operator acting as a user, stay in the user's flows.
    let alice = shared().client_as("alice@example.com", &["developers"]).await.unwrap();
    let (fs, pl) = classified(&alice).await;
    assert_ne!(fs, schema);
    assert_ne!(pl, level);

    // The webhook's rules review, asked as the creator, has a level apart
    // from the creator's other requests (which may be waiting on the webhook).
    let (reviews, reviews_level) = flow(&admin, "portico-operator-access-reviews").await;
    let body = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": "team-a"}}))
    .unwrap();
    let req = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews")
        .header("Content-Type", "application/json")
        .header("Impersonate-User", "alice@example.com")
        .header("Impersonate-Group", "developers")
        .body(body)
        .unwrap();
    let (fs, pl) = classified_request(&operator, req).await;
    assert_eq!(fs, reviews, "a rules review as the creator");
    assert_eq!(pl, reviews_level);
    // Anything else the operator asks as a user stays in the user's flows.
    let req = http::Request::get("/api/v1/namespaces/team-a/configmaps")
        .header("Impersonate-User", "alice@example.com")
        .header("Impersonate-Group", "developers")
        .body(Vec::new())
        .unwrap();
    let (fs, _) = classified_request(&operator, req).await;
    assert_ne!(fs, reviews);
    assert_ne!(fs, schema);

    // Users' writes of Portico's objects (which wait on its webhooks) have
    // a level of their own; their reads stay in the users' flows.
    let (objects, objects_level) = flow(&admin, "portico-operator-objects").await;
    let terminal = "/apis/portico.dev/v1alpha1/namespaces/team-a/terminals/no-such-terminal";
    let req = http::Request::delete(terminal).body(Vec::new()).unwrap();
    let (fs, pl) = classified_request(&alice, req).await;
    assert_eq!(fs, objects, "a user's write of a Terminal");
    assert_eq!(pl, objects_level);
    let req = http::Request::get(terminal).body(Vec::new()).unwrap();
    let (fs, _) = classified_request(&alice, req).await;
    assert_ne!(fs, objects, "a user's read of a Terminal");
    // The operator's own writes of them stay in the operator's level.
    let req = http::Request::delete(terminal).body(Vec::new()).unwrap();
    let (fs, _) = classified_request(&operator, req).await;
    assert_eq!(fs, schema, "the operator's own write");
}

//! The `portico` binary: command-line wiring only.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "portico",
    version,
    about = "Browser terminals, templated deployments and time-limited sessions on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the CustomResourceDefinitions and aggregated ClusterRoles as YAML.
    Crds {
        /// Write one file per object into this directory instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Run the operator: admission webhook, Terminal controller, metrics and health endpoints.
    Operator {
        /// The operator configuration file (YAML); see config/operator.yaml.
        #[arg(long, env = "PORTICO_CONFIG")]
        config: PathBuf,
        /// Log format.
        #[arg(long, value_enum, default_value = "text")]
        log_format: portico::telemetry::LogFormat,
        /// Log filter, for example `info` or `info,portico=debug`.
        #[arg(long, env = "PORTICO_LOG", default_value = "info")]
        log: String,
    },
    /// Run the dashboard (login and sessions, catalog).
    Ui {
        /// The dashboard configuration file (YAML); see config/ui.yaml.
        #[arg(long, env = "PORTICO_UI_CONFIG")]
        config: PathBuf,
        /// Log format.
        #[arg(long, value_enum, default_value = "text")]
        log_format: portico::telemetry::LogFormat,
        /// Log filter.
        #[arg(long, env = "PORTICO_LOG", default_value = "info")]
        log: String,
    },
    /// Run Portico locally: a control plane, the CRDs and demo users, until Ctrl-C.
    #[cfg(feature = "dev")]
    Dev {
        /// Install Portico into an existing cluster with its Helm chart, then
        /// return: this kubeconfig, or the current context when given without a path.
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        kubeconfig: Option<PathBuf>,
        /// With --kubeconfig: the Portico image (repository:tag) the cluster pulls.
        #[arg(long, requires = "kubeconfig")]
        image: Option<String>,
        /// With --kubeconfig: no demo tenants and profiles.
        #[arg(long, requires = "kubeconfig")]
        no_demo: bool,
        /// Start no node beside the local control plane (pods then stay Pending).
        #[arg(long, conflicts_with = "kubeconfig")]
        no_node: bool,
    },
}

fn main() -> anyhow::Result<()> {
    // One TLS crypto provider for every client and server in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Crds { out_dir: None } => print!("{}", portico::crdgen::all_yaml()),
        Cmd::Crds { out_dir: Some(dir) } => portico::crdgen::write_dir(&dir)?,
        Cmd::Operator {
            config,
            log_format,
            log,
        } => {
            portico::allocator::limit_arenas();
            let log = portico::telemetry::init(log_format, &log);
            let config = portico::config::OperatorConfig::load(&config)?;
            tokio::runtime::Runtime::new()?.block_on(async {
                let kube_config = kube::Config::infer().await?;
                portico::operator::run(config, kube_config, Some(log)).await?;
                anyhow::Ok(())
            })?;
        }
        Cmd::Ui {
            config,
            log_format,
            log,
        } => {
            portico::allocator::limit_arenas();
            portico::telemetry::init(log_format, &log);
            let config = portico::ui::config::UiConfig::load(&config)?;
            tokio::runtime::Runtime::new()?.block_on(async {
                let kube_config = kube::Config::infer().await?;
                portico::ui::run(config, kube_config).await?;
                anyhow::Ok(())
            })?;
        }
        #[cfg(feature = "dev")]
        Cmd::Dev {
            kubeconfig,
            image,
            no_demo,
            no_node,
        } => {
            let options = portico::dev::existing::Options { image, demo: !no_demo };
            let target = match kubeconfig {
                None => portico::dev::Target::Local { node: !no_node },
                Some(p) if p.as_os_str().is_empty() => portico::dev::Target::Existing(None, options),
                Some(p) => portico::dev::Target::Existing(Some(p), options),
            };
            tokio::runtime::Runtime::new()?.block_on(portico::dev::run(target))?;
        }
    }
    Ok(())
}

//! hickory's resolver, built from a [`DriverConfig`] for
//! any hickory runtime provider, and the TXT lookup the identity machines ask
//! for.

use atlogin_core::transport::TxtAnswer;
use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::RuntimeProvider;
use hickory_resolver::proto::rr::RData;

use crate::{DriverConfig, DriverError};

/// A resolver on `provider`: the configured nameservers (UDP and TCP), or the
/// system's.
pub fn resolver<P: RuntimeProvider>(
    config: &DriverConfig,
    provider: P,
) -> Result<Resolver<P>, DriverError> {
    let builder = match &config.nameservers {
        Some(servers) => {
            let name_servers = servers
                .iter()
                .map(|server| {
                    let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                    for connection in &mut ns.connections {
                        connection.port = server.port();
                    }
                    ns
                })
                .collect();
            Resolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), name_servers),
                provider,
            )
        }
        None => Resolver::builder(provider).map_err(|e| DriverError::Dns(e.to_string()))?,
    };
    builder.build().map_err(|e| DriverError::Dns(e.to_string()))
}

/// `name` fully qualified, so that no search domain from the system's
/// configuration is appended to a name that came from a handle or a document.
#[must_use]
pub fn fully_qualified(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// Looks up the TXT records of `name`; each record's strings are joined.
pub async fn lookup_txt<P: RuntimeProvider>(dns: &Resolver<P>, name: &str) -> TxtAnswer {
    match dns.txt_lookup(fully_qualified(name).as_str()).await {
        Ok(lookup) => {
            let records: Vec<String> = lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => {
                        let joined: Vec<u8> = txt
                            .txt_data
                            .iter()
                            .flat_map(|part| part.iter().copied())
                            .collect();
                        String::from_utf8(joined).ok()
                    }
                    _ => None,
                })
                .collect();
            if records.is_empty() {
                TxtAnswer::NoRecords
            } else {
                TxtAnswer::Records(records)
            }
        }
        Err(error) if error.is_no_records_found() || error.is_nx_domain() => TxtAnswer::NoRecords,
        Err(error) => TxtAnswer::Failed(error.to_string()),
    }
}

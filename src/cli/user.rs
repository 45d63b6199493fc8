//! `threatlog user`: the node's API users.

use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::Path;

use super::open;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user and print their API key (shown once).
    Add {
        /// The user's organisation: uuid, id or name.
        #[arg(long)]
        org: String,
        /// Role: id 1-6 or name (admin, org-admin, user, publisher, sync, read-only).
        #[arg(long)]
        role: String,
        /// Login email.
        #[arg(long)]
        email: String,
    },
    /// List users: id, email, role, organisation.
    List,
}

/// Runs a `user` command.
pub fn run(dir: &Path, command: UserCommand) -> Result<()> {
    use threatlog::api::auth::Role;
    let node = open(dir)?;
    match command {
        UserCommand::Add { org, role, email } => {
            let email = email.trim();
            if email.is_empty() || !email.contains('@') {
                bail!("--email must be an email address");
            }
            let Some(role) = Role::parse(&role) else {
                bail!("unknown role '{role}': use 1-6 or admin, org-admin, user, publisher, sync, read-only");
            };
            let Some(entry) = node.find_organisation(&org)? else {
                bail!("no organisation '{org}'; add it with `threatlog org add --name NAME`");
            };
            if node
                .users()?
                .iter()
                .any(|(_, user)| user.email.eq_ignore_ascii_case(email))
            {
                bail!("a user with email {email} already exists");
            }
            let key = node.add_user(email, entry.org.uuid, role.id)?;
            println!("user {email} ({}, {})", role.name, entry.org.name);
            println!("API key (shown once): {key}");
        }
        UserCommand::List => {
            println!("{:>4}  {:<32}  {:<12}  ORGANISATION", "ID", "EMAIL", "ROLE");
            for (id, user) in node.users()? {
                let role = Role::by_id(user.role).map_or("?", |role| role.name);
                let org = node
                    .organisation(&user.org)?
                    .map_or_else(|| user.org.to_string(), |entry| entry.org.name);
                println!("{id:>4}  {:<32}  {role:<12}  {org}", user.email);
            }
        }
    }
    Ok(())
}

"""The fixed list of event tags, ``domain:object:action``."""

ACCOUNT_CREATE = "account:create"
ACCOUNT_API_TOKEN_ADDED = "account:api_token:added"  # nosec B105 # tag, no secret
ACCOUNT_API_TOKEN_REMOVED = "account:api_token:removed"  # nosec B105 # tag, no secret
ACCOUNT_API_TOKEN_REMOVED_LEAK = "account:api_token:removed_leak"  # nosec B105 # tag, no secret
ACCOUNT_LOGIN_SUCCESS = "account:login:success"
ACCOUNT_LOGIN_FAILURE = "account:login:failure"
ACCOUNT_LOGOUT = "account:logout"
ACCOUNT_REAUTHENTICATE = "account:reauthenticate"
ACCOUNT_SESSIONS_REVOKED = "account:sessions:revoked"
ACCOUNT_PASSWORD_CHANGE = "account:password:change"  # nosec B105 # tag, no secret
ACCOUNT_PASSWORD_RESET_REQUEST = "account:password:reset:request"  # nosec B105 # tag, no secret
ACCOUNT_PASSWORD_RESET = "account:password:reset"  # nosec B105 # tag, no secret
ACCOUNT_EMAIL_ADD = "account:email:add"
ACCOUNT_EMAIL_REMOVE = "account:email:remove"
ACCOUNT_EMAIL_VERIFIED = "account:email:verified"
ACCOUNT_EMAIL_PRIMARY_CHANGE = "account:email:primary:change"
ACCOUNT_TWO_FACTOR_METHOD_ADDED = "account:two_factor:method_added"
ACCOUNT_TWO_FACTOR_METHOD_REMOVED = "account:two_factor:method_removed"
ACCOUNT_PASSKEY_CHANGE = "account:two_factor:passkey_change"
ACCOUNT_RECOVERY_CODES_GENERATED = "account:recovery_codes:generated"
ACCOUNT_RECOVERY_CODES_REGENERATED = "account:recovery_codes:regenerated"
ACCOUNT_RECOVERY_CODES_USED = "account:recovery_codes:used"
ACCOUNT_DELETE = "account:delete"
ACCOUNT_LANGUAGE_CHANGE = "account:language:change"
# The weekly digest of vulnerable dependencies (bastion.advisories.digest): the account turned
# it on or off; one week's digest was mailed to it (once per week, the row and the mail in
# one transaction).
ACCOUNT_DEPENDENCY_DIGEST_CHANGE = "account:dependency_digest:change"
ACCOUNT_DEPENDENCY_DIGEST_SENT = "account:dependency_digest:sent"
# An administrator disabled or enabled the account (sessions end, tokens stop meanwhile).
ACCOUNT_DISABLE = "account:disable"
ACCOUNT_ENABLE = "account:enable"
# Sign-up: invitations by email (an admin's, or a project Owner's), approval of new accounts.
ACCOUNT_SIGNUP_INVITATION_CREATE = "account:signup_invitation:create"
ACCOUNT_SIGNUP_INVITATION_WITHDRAW = "account:signup_invitation:withdraw"
ACCOUNT_SIGNUP_INVITATION_USE = "account:signup_invitation:use"
ACCOUNT_SIGNUP_PENDING = "account:signup:pending"
ACCOUNT_SIGNUP_APPROVE = "account:signup:approve"
ACCOUNT_SIGNUP_REJECT = "account:signup:reject"
# Index-wide permissions of an account on a private index (see accounts.grants).
ACCOUNT_READ_GRANT_ADD = "account:read_grant:add"
ACCOUNT_READ_GRANT_REMOVE = "account:read_grant:remove"
ACCOUNT_CREATE_GRANT_ADD = "account:create_grant:add"
ACCOUNT_CREATE_GRANT_REMOVE = "account:create_grant:remove"
# Trusted observers (malware reports, issue 14): an administrator made the account one, or not.
ACCOUNT_OBSERVER_GRANT_ADD = "account:observer_grant:add"
ACCOUNT_OBSERVER_GRANT_REMOVE = "account:observer_grant:remove"
# Account recovery after every factor was lost (accounts.account_recovery): an administrator
# requests it with an identity note, another approves, one completes it (the factors go, a
# link is mailed), the user sets a password with the link; or it is cancelled.
ACCOUNT_RECOVERY_REQUEST = "account:recovery:request"
ACCOUNT_RECOVERY_APPROVE = "account:recovery:approve"
ACCOUNT_RECOVERY_COMPLETE = "account:recovery:complete"
ACCOUNT_RECOVERY_LINK_USED = "account:recovery:link_used"
ACCOUNT_RECOVERY_CANCEL = "account:recovery:cancel"

PROJECT_CREATE = "project:create"
PROJECT_ROLE_ADD = "project:role:add"
PROJECT_ROLE_INVITE = "project:role:invite"
PROJECT_ROLE_REVOKE_INVITE = "project:role:revoke_invite"
PROJECT_ROLE_ACCEPT = "project:role:accept"
PROJECT_ROLE_DECLINE = "project:role:decline"
PROJECT_ROLE_CHANGE = "project:role:change"
PROJECT_ROLE_REMOVE = "project:role:remove"
ACCOUNT_ROLE_INVITE = "account:role:invite"
ACCOUNT_ROLE_REVOKE_INVITE = "account:role:revoke_invite"
ACCOUNT_ROLE_ACCEPT = "account:role:accept"
ACCOUNT_ROLE_DECLINE = "account:role:decline"
ACCOUNT_ROLE_CHANGE = "account:role:change"
ACCOUNT_ROLE_REMOVE = "account:role:remove"
ADMIN_RESERVED_NAME_RELEASE = "admin:reserved_name:release"
PROJECT_RELEASE_ADD = "project:release:add"
PROJECT_RELEASE_YANK = "project:release:yank"
PROJECT_RELEASE_UNYANK = "project:release:unyank"
PROJECT_RELEASE_REMOVE = "project:release:remove"
PROJECT_STATUS_CHANGE = "project:status:change"
# An administrator changed the project's per-file upload limit.
PROJECT_UPLOAD_LIMIT_CHANGE = "project:upload_limit:change"
# A token that can act on the project was created or revoked (also on the account).
PROJECT_API_TOKEN_ADDED = "project:api_token:added"  # nosec B105 # tag, no secret
PROJECT_API_TOKEN_REMOVED = "project:api_token:removed"  # nosec B105 # tag, no secret
PROJECT_REMOVE = "project:remove"
FILE_ADD = "file:add"
FILE_REMOVE = "file:remove"

ADMIN_PROHIBITED_NAME_ADD = "admin:prohibited_name:add"
ADMIN_PROHIBITED_NAME_REMOVE = "admin:prohibited_name:remove"
# An administrator reserved a name (not a deleted project's), or gave a reserved name to a user.
ADMIN_RESERVED_NAME_ADD = "admin:reserved_name:add"
ADMIN_RESERVED_NAME_GIVE = "admin:reserved_name:give"

# The proxy's file cache: an upstream sent other bytes than its page listed (refused, not kept);
# an administrator pruned cached upstream files nobody downloaded for a while.
PROXY_FILE_HASH_MISMATCH = "proxy:file:hash_mismatch"
ADMIN_CACHE_PRUNE = "admin:cache:prune"
# An administrator pruned the files of rendered upstream pages the server's processes share.
ADMIN_PAGE_CACHE_PRUNE = "admin:page_cache:prune"

# Views of the index (/views/<name>/) and their policies, and exemptions from a view's cooldown.
ADMIN_VIEW_ADD = "admin:view:add"
ADMIN_VIEW_CHANGE = "admin:view:change"
ADMIN_VIEW_REMOVE = "admin:view:remove"
ADMIN_VIEW_EXEMPTION_ADD = "admin:view:exemption:add"
ADMIN_VIEW_EXEMPTION_REMOVE = "admin:view:exemption:remove"
# Dependency confusion (proxy.holds): a new local name an upstream serves waits for an
# administrator; the attempt, and the decision on it.
PROXY_NAME_HOLD_REQUEST = "proxy:name_hold:request"
ADMIN_NAME_HOLD_APPROVE = "admin:name_hold:approve"
ADMIN_NAME_HOLD_REJECT = "admin:name_hold:reject"
# Proxy upstreams (issue 12): an administrator added, changed or removed an upstream index.
# The password is never recorded, only that it was set, changed or removed.
ADMIN_UPSTREAM_ADD = "admin:upstream:add"
ADMIN_UPSTREAM_CHANGE = "admin:upstream:change"
ADMIN_UPSTREAM_REMOVE = "admin:upstream:remove"
# Known vulnerabilities (bastion.advisories): one import run of OSV records, with its counts;
# a local project quarantined because a malicious-package record (MAL-) names it.
ADMIN_ADVISORIES_IMPORT = "admin:advisories:import"

# Malware reports (packaging.reports): a user or trusted observer reported a project (or one
# release); a rule quarantined it at once; an administrator cleared its reports (lifting a
# quarantine), quarantined it, or removed it (its files' sha256 blocked for good).
PROJECT_REPORT_ADD = "project:report:add"
PROJECT_REPORT_AUTO_QUARANTINE = "project:report:auto_quarantine"
ADMIN_REPORT_CLEAR = "admin:report:clear"
ADMIN_REPORT_QUARANTINE = "admin:report:quarantine"
ADMIN_REPORT_REMOVE = "admin:report:remove"
# Trusted publishing (issue 13): an Owner added or removed a publisher (a CI workflow that may
# publish the project), a user registered or withdrew a pending one (for a name not yet
# taken); a publisher's first run pinned the ids it was given only names for; a CI run
# exchanged its OIDC token for a short-lived upload token.
PROJECT_PUBLISHER_ADD = "project:publisher:add"
PROJECT_PUBLISHER_REMOVE = "project:publisher:remove"
PROJECT_PUBLISHER_IDS_LEARNED = "project:publisher:ids_learned"
PROJECT_TRUSTED_TOKEN_MINTED = "project:trusted_token:minted"  # nosec B105 # tag, no secret
ACCOUNT_PENDING_PUBLISHER_ADD = "account:pending_publisher:add"
ACCOUNT_PENDING_PUBLISHER_REMOVE = "account:pending_publisher:remove"
# An administrator trusted an OIDC issuer (GitHub Enterprise, self-managed GitLab, a custom
# one), or stopped trusting it.
ADMIN_OIDC_ISSUER_ADD = "admin:oidc_issuer:add"
ADMIN_OIDC_ISSUER_REMOVE = "admin:oidc_issuer:remove"
# An Owner switched the project to trusted-publishing-only mode (API tokens cannot upload to
# it; those scoped to it are revoked), or back.
PROJECT_TRUSTED_ONLY_CHANGE = "project:trusted_publishing_only:change"
# Look-alike names and namespaces (issue 14).
PROJECT_LOOKALIKE_REFUSE = "project:lookalike:refuse"
PROJECT_LOOKALIKE_HOLD = "project:lookalike:hold"
ADMIN_ALLOWED_NAME_ADD = "admin:allowed_name:add"
ADMIN_ALLOWED_NAME_REMOVE = "admin:allowed_name:remove"
ADMIN_LOOKALIKE_CORPUS_LOAD = "admin:lookalike_corpus:load"
ADMIN_NAMESPACE_GRANT = "admin:namespace:grant"
ADMIN_NAMESPACE_REVOKE = "admin:namespace:revoke"
PROXY_LOOKALIKE_BLOCK = "proxy:lookalike:block"
# Backups (bastion.ops.backup): the whole index exported, or imported into a new one.
ADMIN_INDEX_EXPORT = "admin:index:export"
ADMIN_INDEX_IMPORT = "admin:index:import"
# What is inside a file (bastion.inventory): a stored file's bundled native libraries were
# inventoried; a new release's code was checked with bandit; an administrator loaded new
# known-vulnerable bundled-library data.
INVENTORY_FILE_RECORD = "inventory:file:record"
INVENTORY_CODE_CHECK_RECORD = "inventory:code_check:record"
ADMIN_BUNDLED_LIBS_LOAD = "admin:bundled_libs:load"
# An administrator queued the inventory of the stored files that have none (older uploads).
ADMIN_INVENTORY_QUEUE = "admin:inventory:queue"
# An administrator asked for every public page to be rendered to files again (issue 16).
ADMIN_PAGES_RENDER = "admin:pages:render"
# Scanning (issue 15): a file was held from clients (being scanned, quarantined, waiting for
# review) or released again; a scan's verdict; an administrator marked a finding a false
# positive, disabled or enabled a rule, or started a rescan.
FILE_HOLD = "file:hold"
FILE_RELEASE = "file:release"
PROJECT_RELEASE_QUARANTINE = "project:release:quarantine"
FILE_SCAN = "file:scan"
PROXY_FILE_SCAN = "proxy:file:scan"
ADMIN_SCAN_FALSE_POSITIVE = "admin:scan:false_positive"
ADMIN_SCAN_RULE_DISABLE = "admin:scan_rule:disable"
ADMIN_SCAN_RULE_ENABLE = "admin:scan_rule:enable"
ADMIN_SCAN_RESCAN = "admin:scan:rescan"
# An administrator wrote the chain's head to its anchor outside the database on demand.
ADMIN_EVENT_CHAIN_ANCHOR = "admin:event_chain:anchor"
# PEP 740 attestations (bastion.provenance): a new file's verified attestations were stored;
# an Owner (or an administrator) switched "uploads must be attested" on or off for a project;
# an administrator installed a new Sigstore trust root.
FILE_ATTESTATION_ADD = "file:attestation:add"
PROJECT_ATTESTATION_REQUIRED_CHANGE = "project:attestation_required:change"
ADMIN_SIGSTORE_TRUST_ROOT_REFRESH = "admin:sigstore_trust_root:refresh"
# TUF metadata (bastion.tuf, issue 17): the repository was created; a new root was signed
# (renewed, or with new root keys or a new online key; online, or signed offline and
# applied); the next root was prepared for signing on an offline machine.
ADMIN_TUF_INIT = "admin:tuf:init"
ADMIN_TUF_ROOT_SIGN = "admin:tuf:root_sign"
ADMIN_TUF_ROOT_PREPARE = "admin:tuf:root_prepare"
# PEP 740 through the proxy (issue 17): an upstream file's provenance was checked (verified,
# or refused with the reason); a view pinned a proxied project's publisher on first use; a
# view hid a file attested by another publisher than the pinned one (the admins are mailed);
# an administrator pinned a publisher in a view, or withdrew a pin.
PROXY_FILE_PROVENANCE = "proxy:file:provenance"
PROXY_PUBLISHER_PIN_TOFU = "proxy:publisher_pin:tofu"
PROXY_PUBLISHER_MISMATCH = "proxy:publisher:mismatch"
ADMIN_VIEW_PIN_ADD = "admin:view:pin:add"
ADMIN_VIEW_PIN_REMOVE = "admin:view:pin:remove"

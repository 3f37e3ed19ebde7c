/**
 * The parameters a Postfix proxymap process declares at start-up, in the
 * order it declares them (facts from Postfix 3.7.11: global/mail_params.c
 * mail_params_init() and proxymap/proxymap.c main()).
 *
 * Why the order matters: when a declared parameter is not set in main.cf or
 * by -o, Postfix stores its default in the configuration dictionary. A
 * string default is $name-expanded at that moment, so it sees only the
 * parameters declared before it; any $name that is neither in main.cf nor
 * declared (yet) expands to "". Other kinds (numbers, booleans, times) are
 * stored unexpanded. That is why, in a real proxymap, $smtpd_sasl_path
 * expands to "" while `postconf -x` shows "smtpd".
 *
 * Kinds: "str" = expanded when declared; "raw" = stored as written;
 * "fn" = a computed default (myhostname, mydomain, mynetworks), expanded.
 */

export type DeclKind = "str" | "raw" | "fn";
export type Generation = readonly [number, number, number];

function names(kind: DeclKind, list: string): Array<[string, DeclKind]> {
  return list
    .trim()
    .split(/\s+/)
    .map((n) => [n, kind]);
}

/** mail_params_init(), Postfix 3.7.11. */
const GLOBAL_PARAMETERS: Array<[string, DeclKind]> = [
  ...names("str", "compatibility_level"),
  ...names(
    "str",
    `mail_version syslog_facility inet_protocols multi_instance_directories multi_instance_group
     multi_instance_name maillog_file maillog_file_prefixes maillog_file_compressor
     maillog_file_rotate_suffix postlog_service_name dnssec_probe known_tcp_ports`,
  ),
  ...names("raw", "daemon_table_open_error_is_fatal dns_ncache_ttl_fix_enable"),
  ...names("raw", "smtputf8_enable enable_idna2003_compatibility respectful_logging"),
  ...names("fn", "myhostname mydomain"),
  ...names(
    "str",
    `mail_name syslog_name mail_owner setgid_group mydestination myorigin relayhost daemon_directory
     data_directory command_directory meta_directory queue_directory shlib_directory
     process_id_directory inet_interfaces proxy_interfaces double_bounce_sender default_privs
     alias_database mail_release_date default_database_type hash_queue_names recipient_delimiter
     relay_domains fast_flush_domains export_environment import_environment mynetworks_style
     debug_peer_list default_verp_delimiters verp_delimiter_filter parent_domain_matches_subdomains
     alternate_config_directories bounce_service_name cleanup_service_name defer_service_name
     pickup_service_name queue_service_name rewrite_service_name showq_service_name
     error_service_name flush_service_name address_verify_service_name trace_service_name
     proxymap_service_name proxywrite_service_name internal_mail_filter_classes
     multi_instance_wrapper default_delivery_status_filter smtputf8_autodetect_classes
     message_drop_headers info_log_address_format`,
  ),
  ...names(
    "raw",
    `default_process_limit max_use dont_remove line_length_limit hash_queue_depth fork_attempts
     deliver_lock_attempts debug_peer_level fault_injection_code berkeley_db_create_buffer_size
     berkeley_db_read_buffer_size header_size_limit header_address_token_limit mime_nesting_limit
     mime_boundary_length_limit delay_logging_resolution_limit tcp_windowsize`,
  ),
  ...names("raw", "message_size_limit lmdb_map_size"),
  ...names(
    "raw",
    `disable_dns_lookups soft_bounce owner_request_special strict_8bitmime strict_7bit_headers
     strict_8bitmime_body strict_mime_encoding_domain disable_mime_input_processing
     disable_mime_output_conversion address_verify_negative_cache
     backwards_bounce_logfile_compatibility helpful_warnings send_cyrus_sasl_authzid
     multi_instance_enable enable_long_queue_ids strict_smtputf8 enable_original_recipient`,
  ),
  ...names(
    "raw",
    `application_event_drain_time max_idle ipc_timeout ipc_idle ipc_ttl trigger_timeout fork_delay
     deliver_lock_delay stale_lock_time daemon_timeout in_flow_delay`,
  ),
  ...names("fn", "mynetworks"),
];

/** proxymap.c main() str_table, Postfix 3.7.11 (up to 3.11). */
const PROXYMAP_37 = names(
  "str",
  `alias_maps local_recipient_maps virtual_alias_maps virtual_alias_domains virtual_mailbox_maps
   virtual_mailbox_domains relay_recipient_maps canonical_maps sender_canonical_maps
   recipient_canonical_maps relocated_maps transport_maps address_verify_map
   smtpd_sender_login_maps postscreen_cache_map proxy_read_maps proxy_write_maps`,
);

/** proxymap.c main() str_table, Postfix 3.12 (adds restriction classes). */
const PROXYMAP_312 = names(
  "str",
  `alias_maps local_recipient_maps virtual_alias_maps virtual_alias_domains virtual_mailbox_maps
   virtual_mailbox_domains relay_recipient_maps canonical_maps sender_canonical_maps
   recipient_canonical_maps relocated_maps transport_maps smtpd_sender_login_maps
   smtpd_forbidden_commands postscreen_forbidden_commands address_verify_map postscreen_cache_map
   proxy_read_maps proxy_write_maps smtpd_restriction_classes`,
);

export function atLeast(gen: Generation, major: number, minor: number, patch = 0): boolean {
  if (gen[0] !== major) return gen[0] > major;
  if (gen[1] !== minor) return gen[1] > minor;
  return gen[2] >= patch;
}

/**
 * Declared parameters in declaration order for a Postfix generation. The
 * global part is 3.7.11's for every generation (later releases add a few
 * globals that nothing here expands).
 */
export function declaredParameters(gen: Generation): Array<[string, DeclKind]> {
  return [...GLOBAL_PARAMETERS, ...(atLeast(gen, 3, 12) ? PROXYMAP_312 : PROXYMAP_37)];
}

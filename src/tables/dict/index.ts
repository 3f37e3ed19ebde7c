/**
 * The dict layer between the proxymap service and the table drivers: what
 * Postfix does in proxymap.c's proxy_map_find(), dict_open3(), dict.c,
 * dict_utf8.c, dict_surrogate.c and dict_debug.c. One module per piece:
 *
 *   open.ts       dict_open3(): instance keys, surrogates, OPEN_LOCK, layers
 *   cache.ts      the open instances, their bound, change probes
 *   instance.ts   one open instance and who owns its flags
 *   ops.ts        lookup, update, delete, sequence -> {status, value, flags}
 *   utf8Layer.ts  dict_utf8.c        debugLayer.ts  dict_debug.c
 *   surrogate.ts  dict_surrogate.c   errors.ts      failure -> warning + status
 *   nested.ts     OpenContext: tables opened by tables
 *   settle.ts     sync-or-async continuation
 *
 * Deliberate differences from the reference (it exits in each case; ours
 * answers and keeps serving every other client): unsupported operations
 * (CONFIG), OPEN_LOCK with LOCK (opened with the open lock), an empty type or name up to 3.10
 * (CONFIG), driver configuration errors (CONFIG), more than 13 failed opens
 * (no limit), a changed file table (re-opened instead of exiting, unless
 * proxymap_table_change_restart asks for the exit).
 */
import "./nested";
export { Dict } from "./instance";
export { openDict, registeredName } from "./open";
export { dictDel, dictGet, dictPut, dictSeq } from "./ops";
export { changedTables, closeAll as closeAllDicts, openCount, setMaxTables, DEFAULT_MAX_TABLES } from "./cache";
export { openContext } from "./nested";
export { setUtf8Enabled } from "../utf8";

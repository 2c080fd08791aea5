import BerthNetlink
import CNFTables
import Synchronization

/// One libnftables call: a fresh context per script (its netlink socket lives in the network
/// namespace of the thread that creates it), output and errors captured.
enum NFTables {
    /// libnftables keeps some process-wide state (its cache and symbol tables are set up per
    /// context, but not all of it is documented thread-safe), so scripts run one at a time.
    private static let serial = Mutex(())

    /// Runs `script` as one transaction and returns what it printed (`list` commands).
    /// `dryRun` sends the batch for the kernel to validate and then aborts it.
    static func run(_ script: String, dryRun: Bool = false, json: Bool = false) throws(FirewallError) -> String {
        let outcome: Result<String, FirewallError> = serial.withLock { _ in
            guard let context = nft_ctx_new(UInt32(NFT_CTX_DEFAULT)) else {
                return .failure(FirewallError(.rejected, "libnftables: cannot create a context"))
            }
            defer { nft_ctx_free(context) }
            _ = nft_ctx_buffer_output(context)
            _ = nft_ctx_buffer_error(context)
            nft_ctx_set_dry_run(context, dryRun)
            if json { nft_ctx_output_set_flags(context, UInt32(NFT_CTX_OUTPUT_JSON)) }
            let status = nft_run_cmd_from_buffer(context, script)
            let output = nft_ctx_get_output_buffer(context).map { String(cString: $0) } ?? ""
            guard status == 0 else {
                var errors = nft_ctx_get_error_buffer(context).map { String(cString: $0) } ?? ""
                while errors.last == "\n" { errors.removeLast() }
                return .failure(FirewallError(.rejected, errors.isEmpty ? "nft failed (status \(status))" : errors))
            }
            return .success(output)
        }
        return try outcome.get()
    }

    /// `run` inside the network namespace pinned at `namespace`, or here when nil.
    static func run(_ script: String, in namespace: String?, dryRun: Bool = false,
                    json: Bool = false) throws(FirewallError) -> String {
        guard let namespace else { return try run(script, dryRun: dryRun, json: json) }
        let outcome: Result<String, FirewallError>
        do {
            outcome = try NetworkNamespace.run(in: namespace) {
                Result { () throws(FirewallError) in try run(script, dryRun: dryRun, json: json) }
            }
        } catch {
            throw FirewallError(.namespace, "\(error)")
        }
        return try outcome.get()
    }
}

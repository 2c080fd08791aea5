// berthd: the Berth daemon. Parses flags and daemon.json, prepares its roots, serves the
// Docker API on each --host and shuts down cleanly on SIGTERM/SIGINT. Wiring only: what the
// API does lives in BerthAPI (and later the engine).
import BerthAPI
import BerthEngine
import BerthOS
import Glibc

func run() async -> Int32 {
    let flags: DaemonFlags
    let options: DaemonOptions
    let ignoredKeys: [String]
    do {
        flags = try DaemonFlags(Array(CommandLine.arguments.dropFirst()))
        if flags.bool("help") == true {
            print(DaemonOptions.usage, terminator: "")
            return 0
        }
        if flags.bool("version") == true {
            print("Berth version \(BerthAPI.engineVersion), API \(BerthAPI.maximumVersion)")
            return 0
        }
        (options, ignoredKeys) = try DaemonOptions.load(flags)
    } catch {
        DaemonLog.fatal("\(error)\nSee 'berthd --help'.")
        return 1
    }
    let log = DaemonLog.make(format: options.logFormat, level: options.logLevel)
    for key in ignoredKeys {
        log.warning("configuration key is not supported and is ignored", [("key", key), ("file", options.configFile ?? "")])
    }

    // Where to listen. Plain TCP hands root to whoever reaches the port, so it is opt-in.
    var addresses: [ListenAddress] = []
    var warnings: [String] = []
    do {
        for host in options.hosts.isEmpty ? ["unix://\(ListenAddress.defaultUnixPath)"] : options.hosts {
            let address = try ListenAddress.parse(host)
            if case .tcp = address {
                guard options.insecureTCP else {
                    throw UsageError(message: "refusing to listen on \(address) without TLS: TLS is not implemented yet. "
                        + "Pass --insecure-tcp to serve the API unencrypted and unauthenticated (anyone who can reach "
                        + "the port gets root on this host), or use a unix:// socket")
                }
                warnings.append("WARNING: API is accessible on http://\(address.description.dropFirst("tcp://".count)) without encryption.")
            }
            addresses.append(address)
        }
    } catch {
        log.error("\(error)")
        return 1
    }

    do {
        try DaemonFiles.makeRoot(options.dataRoot, mode: 0o711)
        try DaemonFiles.makeRoot(options.execRoot, mode: 0o711)
    } catch {
        log.error("\(error)")
        return 1
    }
    let pidFile = options.pidFile ?? options.execRoot + "/berthd.pid"
    do {
        try DaemonFiles.writePidFile(pidFile)
    } catch {
        log.error("\(error)")
        return 1
    }
    defer { unlink(pidFile) }

    let id: String
    do {
        id = try DaemonFiles.engineID(dataRoot: options.dataRoot)
    } catch {
        log.error("\(error)")
        return 1
    }
    log.info("Starting up", [("version", BerthAPI.engineVersion), ("pid", "\(getpid())"), ("data-root", options.dataRoot), ("exec-root", options.execRoot)])
    for address in addresses {
        guard case .tcp = address else { continue }
        log.warning("Binding to \(address) without TLS: the API is unencrypted and unauthenticated; anyone who can reach it has root access on this host. Use unix sockets unless the network is trusted.")
    }

    let besideMe = DaemonSystemInfo.executablePath().map { String($0[..<($0.lastIndex(of: "/") ?? $0.endIndex)]) } ?? "."
    let engine: Engine
    do {
        let helpers = options.execRoot + "/bin"
        engine = try Engine(root: options.dataRoot,
                            runtimePath: SealedHelpers.stage(options.runtimePath ?? besideMe + "/berth-runtime", in: helpers, log: log),
                            monitorPath: SealedHelpers.stage(options.monitorPath ?? besideMe + "/berth-monitor", in: helpers, log: log),
                            initPath: options.initPath ?? besideMe + "/berth-init",
                            insecureRegistries: options.insecureRegistries, registryMirrors: options.registryMirrors,
                            registryCertsDirectory: options.registryCertsDirectory, network: options.network)
        try await engine.setUpNetworking()
    } catch {
        log.error("\(error)")
        return 1
    }
    await engine.recover()

    let signals = SignalWaiter([SIGTERM, SIGINT])
    let provider = DaemonSystemInfo(id: id, dataRoot: options.dataRoot, debug: options.debug, warnings: warnings,
                                    engine: engine)
    var router = Router()
    SystemRoutes(provider: provider).register(on: &router)
    EventRoutes(engine: engine).register(on: &router)
    DiskUsageRoutes(engine: engine).register(on: &router)
    ImageRoutes(engine: engine).register(on: &router)
    DistributionRoutes(engine: engine).register(on: &router)
    ContainerRoutes(engine: engine).register(on: &router)
    VolumeRoutes(engine: engine).register(on: &router)
    NetworkRoutes(engine: engine).register(on: &router)
    SwarmRoutes().register(on: &router)
    UnservedRoutes(engine: engine).register(on: &router)
    ContainerProcessRoutes(engine: engine).register(on: &router)
    ExecRoutes(engine: engine).register(on: &router)
    let server = APIServer(router: router, log: log)
    let access = UnixSocketAccess(group: options.group ?? "berth", groupRequired: options.group != nil)
    do {
        for address in addresses {
            try await server.listen(address, access: access)
        }
    } catch {
        log.error("\(error)")
        await server.shutdown()
        return 1
    }
    log.info("Daemon has completed initialization")

    let signal = await signals.next()
    log.info("Processing signal '\(signal == SIGINT ? "interrupt" : "terminated")'")
    Task {
        // A second signal while shutting down means "now".
        _ = await signals.next()
        log.warning("second signal: exiting without cleanup")
        exit(1)
    }
    await server.shutdown()
    log.info("Daemon shutdown complete")
    return 0
}

signal(SIGPIPE, SIG_IGN)
exit(await run())

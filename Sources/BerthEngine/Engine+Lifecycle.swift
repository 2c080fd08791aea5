import BerthImages
import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc

extension Engine {
    // MARK: Create

    public func create(name requested: String?, request: DockerContainerCreateRequest) throws(EngineError) -> (id: String, warnings: [String]) {
        var name: String
        if let requested, !requested.isEmpty {
            name = try availableName(requested)
        } else {
            repeat { name = "/" + Self.randomName() } while containers.values.contains { $0.name == name }
        }
        guard let imageRef = request.config.image, !imageRef.isEmpty else {
            throw EngineError(.invalidArgument, "no image specified: config.Image is required")
        }
        try Self.validateRestartPolicy(request.hostConfig ?? DockerHostConfig())
        let image: ImageStore.Image
        do { image = try images.image(imageRef) } catch { throw Self.mapError(error, imageRef: imageRef) }

        var id = Self.randomID()
        while containers[id] != nil { id = Self.randomID() }
        var hostConfig = request.hostConfig ?? DockerHostConfig()
        if hostConfig.logConfig?.type == nil || hostConfig.logConfig?.type == "" {
            hostConfig.logConfig = .init(type: "json-file", config: hostConfig.logConfig?.config ?? [:])
        }
        _ = try LogRotation(hostConfig.logConfig)
        if hostConfig.networkMode == nil || hostConfig.networkMode == "" { hostConfig.networkMode = "default" }
        let dir = dir(id)
        var mountPlan = MountPlan()  // volumes taken: given back if the create fails
        do throws(EngineError) {
            try Self.system { () throws(SystemError) in
                try FileSystem.makeDirectories(dir + "/bundle/rootfs", mode: 0o710)
            }
            let mount: OverlayMount
            do { mount = try images.prepareRootfs(container: id, image: image.id.string, target: rootfs(id)) } catch {
                throw Self.mapError(error)
            }
            let endpoints = try plannedEndpoints(hostConfig, request.networkingConfig)
            _ = try Self.portRequests(hostConfig, exposed: [])  // bad port specs are a 400 now, not at start
            mountPlan = try planMounts(config: request.config, hostConfig: hostConfig,
                                       imageVolumes: Array((image.config.config?.volumes ?? [:]).keys), layers: mount.lower)
            var specHostConfig = mountPlan.specHostConfig(hostConfig)
            // Berth pins each container's network namespace itself (Engine+Networks), so the
            // runtime joins it rather than making one; `host` and `container:` pass through.
            let sharesNetwork = hostConfig.networkMode == "host" || hostConfig.networkMode?.hasPrefix("container:") == true
            if !sharesNetwork { specHostConfig.networkMode = "none" }
            let users = UserDatabase(layers: mount.lower)
            try users.checkNamesResolvable(request.config.user.flatMap { $0.isEmpty ? nil : $0 } ?? image.config.config?.user ?? "",
                                           groupAdd: hostConfig.groupAdd ?? [])
            let lookups = SpecBuilder.Lookups(
                user: { users.user($0) },
                group: { users.group($0) },
                volume: { [volumes] name in volumes.mountpoint(name) },
                namespacePath: namespaceLookup(),
                volumeSubpath: { [dir] destination in Self.subpathMountPoint(containerDir: dir, destination: destination) })
            var built = try SpecBuilder.buildWithWarnings(
                config: request.config, hostConfig: specHostConfig, image: image.config, containerID: id,
                rootfs: "rootfs", hostsFile: dir + "/hosts", resolvConf: dir + "/resolv.conf",
                hostnameFile: dir + "/hostname", initPath: FileSystem.exists(initPath) ? initPath : nil, lookups: lookups)
            if !sharesNetwork, let i = built.spec.linux?.namespaces?.firstIndex(where: { $0.type == "network" }) {
                built.spec.linux?.namespaces?[i].path = sandboxPath(id)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let specBytes: Data
            do { specBytes = try encoder.encode(built.spec) } catch {
                throw EngineError(.system, "encoding config.json: \(error)")
            }
            try Self.system { () throws(SystemError) in
                try FileSystem.writeAtomically(dir + "/bundle/config.json", specBytes, durable: true)
            }
            let args = built.spec.process?.args ?? []
            var rec = ContainerRecord(
                id: id, name: name, created: Timestamp.now(), image: imageRef, imageID: image.id.string,
                path: args.first ?? "", args: Array(args.dropFirst()),
                config: request.config.merged(with: image.config.config), hostConfig: hostConfig)
            rec.mounts = mountPlan.mounts
            rec.endpoints = endpoints
            try writeNetworkFiles(rec, host: hostResolvConf())
            try persist(rec)
            containers[id] = rec
            publish(container: rec, "create")
            return (id, built.warnings)
        } catch {
            undoMounts(mountPlan)
            try? images.snapshots.remove(container: id)
            try? FileSystem.removeTree(dir)
            throw error
        }
    }

    // MARK: Start

    public func start(_ ref: String) async throws(EngineError) {
        try await start(ref, byPolicy: false)
    }

    /// A start by a user resets the restart policy's count; one by the policy does not.
    func start(_ ref: String, byPolicy: Bool) async throws(EngineError) {
        let id = try resolve(ref)
        guard var rec = containers[id] else { throw EngineError(.notFound, "No such container: \(ref)") }
        if rec.status == .paused {
            throw EngineError(.conflict, "cannot start a paused container, try unpause instead")
        }
        if rec.running { throw EngineError(.notModified, "container already started") }
        if !byPolicy {
            rec.restartCount = 0
            restartDelays[id] = nil
            if rec.status == .restarting { try rec.transition(to: .exited) }
        }
        guard !removing.contains(id) else { throw EngineError(.conflict, "removal of container \(id) is already in progress") }
        guard starting.insert(id).inserted else { throw EngineError(.conflict, "container \(id) is already being started") }
        defer { starting.remove(id) }
        if let deletion = runtimeDeletes[id] { await deletion.value }
        if rec.runtimeCreated {
            _ = await runtime(["delete", "--force", id])
            rec.runtimeCreated = false
        }
        let monitorDir = monitorDir(id)
        unlink(monitorDir + "/exit.json")
        do throws(EngineError) {
            if !rec.rootfsMounted {
                let snapshot: Snapshotter.ContainerSnapshot
                do { snapshot = try images.snapshots.snapshot(container: id) } catch { throw Self.mapError(error) }
                guard Glibc.mount("overlay", rootfs(id), "overlay", 0, snapshot.mount.options) == 0 else {
                    throw EngineError(.system, SystemError("mount overlay on \(rootfs(id))").message)
                }
                rec.rootfsMounted = true
                containers[id] = rec
                try mountVolumeSubpaths(rec)
            }
            if !rec.networkReady {
                try setUpSandbox(&rec)
                rec.networkReady = true
                containers[id] = rec
            }
            var args = ["--runtime", runtimePath, "--runtime-root", root + "/runtime", "--id", id,
                        "--bundle", dir(id) + "/bundle", "--dir", monitorDir]
            if rec.config.tty == true { args.append("--tty") }
            if rec.config.openStdin == true { args.append("--stdin") }
            args += try LogRotation(rec.hostConfig.logConfig).monitorArguments
            let launched = await HelperProcess.run(monitorPath, args)
            guard launched.succeeded else {
                throw EngineError(.system, Self.trimmed(launched.output))
            }
            rec = containers[id] ?? rec
            rec.runtimeCreated = true
            rec.monitorPid = Int32(Self.trimmed(launched.output)) ?? 0
            containers[id] = rec
            // Attach clients connect before the process runs, so they miss no output.
            for waiter in pendingAttaches.removeValue(forKey: id) ?? [] {
                if let conn = try? AttachConnection(path: monitorDir + "/attach.sock") { waiter.yield(conn) }
                waiter.finish()
            }
            let started = await runtime(["start", id])
            guard started.succeeded else {
                _ = await runtime(["delete", "--force", id])
                rec.runtimeCreated = false
                containers[id] = rec
                throw EngineError(.system, Self.trimmed(started.output))
            }
        } catch {
            rec = containers[id] ?? rec
            unmountRootfs(&rec)
            releaseNetwork(&rec)
            rec.error = error.message
            containers[id] = rec
            try? persist(rec)
            for waiter in pendingAttaches.removeValue(forKey: id) ?? [] { waiter.finish() }
            // dockerd removes an AutoRemove container that failed to start: `docker run --rm`
            // waits for that removal before it reports the error.
            if rec.hostConfig.autoRemove == true, !byPolicy {
                Task { try? await self.remove(id, force: true) }
            }
            throw error
        }
        rec = containers[id] ?? rec
        rec.pid = (try? FileSystem.readString(monitorDir + "/pid")).flatMap { Int32(Self.trimmed($0)) } ?? 0
        try rec.transition(to: .running)
        rec.startedAt = Timestamp.now()
        rec.finishedAt = ContainerRecord.zeroTime
        rec.exitCode = 0
        rec.error = ""
        rec.oomKilled = false
        rec.manuallyStopped = false
        containers[id] = rec
        try persist(rec)
        publish(container: rec, "start")
        watchExit(id)
        startHealthChecks(id)
    }

    /// Has the exit watcher report the container's exit (or the loss of its monitor).
    func watchExit(_ id: String) {
        exitWatcher.watch(id: id, directory: monitorDir(id), monitorPid: containers[id]?.monitorPid ?? 0)
    }

    func exitReported(_ id: String, _ event: ExitWatcher.Event) async {
        switch event {
        case .exited: await observeExit(id)
        case .monitorLost: await monitorLost(id)
        }
    }

    struct ExitFile: Decodable {
        var exitCode: Int32
        var finishedAt: String?
        var oomKilled: Bool?
    }

    /// The monitor is gone but the container may still run: kill it (no one holds its stdio or
    /// can reap it any more) and record the exit as Docker records a lost shim.
    func monitorLost(_ id: String) async {
        guard containers[id]?.running == true else { return }
        _ = await runtime(["kill", id, "SIGKILL"])
        let exit = #"{"exitCode":255,"finishedAt":"\#(Timestamp.now())"}"#
        try? FileSystem.writeAtomically(monitorDir(id) + "/exit.json", Array(exit.utf8))
        containers[id]?.error = "container monitor exited unexpectedly"
        await observeExit(id)
    }

    func observeExit(_ id: String) async {
        guard var rec = containers[id], rec.running else { return }
        let exit = (try? FileSystem.readBytes(monitorDir(id) + "/exit.json"))
            .flatMap { try? JSONDecoder().decode(ExitFile.self, from: Data($0)) }
        try? rec.transition(to: .exited)
        rec.exitCode = exit?.exitCode ?? 255
        rec.oomKilled = exit?.oomKilled ?? false
        rec.finishedAt = exit?.finishedAt ?? Timestamp.now()
        rec.pid = 0
        let deleteRuntime = rec.runtimeCreated
        rec.runtimeCreated = false
        unmountRootfs(&rec)
        releaseNetwork(&rec)
        containers[id] = rec
        exitCounts[id, default: 0] += 1
        publish(container: rec, "die", extra: ["exitCode": String(rec.exitCode)])
        try? persist(rec)
        if deleteRuntime {
            // A start that comes meanwhile waits for this, or its create would meet the old state.
            let deletion = Task { _ = await self.runtime(["delete", "--force", id]) }
            runtimeDeletes[id] = deletion
            await deletion.value
            runtimeDeletes[id] = nil
        }
        if rec.hostConfig.autoRemove == true, containers[id] != nil {
            try? await remove(id, force: true)
        } else {
            scheduleRestartIfWanted(id)
        }
    }

    /// Unmounts the container's root filesystem and the volume subpaths mounted with it.
    func unmountRootfs(_ rec: inout ContainerRecord) {
        Self.unmountVolumeSubpaths(containerDir: dir(rec.id))
        guard rec.rootfsMounted else { return }
        let target = rootfs(rec.id)
        if umount2(target, 0) != 0 && errno != EINVAL { umount2(target, Int32(MNT_DETACH)) }
        rec.rootfsMounted = false
    }

    // MARK: Volume subpaths

    /// Where a volume subpath for `destination` is mounted for the runtime to bind from: a
    /// directory of the engine's own, named by the destination's digest.
    static func subpathMountPoint(containerDir: String, destination: String) -> String {
        containerDir + "/subpaths/" + Digest.of(Array(destination.utf8)).hex.prefix(32)
    }

    /// Mounts each volume subpath at its mount point, resolved now inside the volume with every
    /// symlink refused, and mounted through the resolved descriptor: the container may have
    /// turned the subpath into a symlink to a host directory since create (CVE-2023-3676 class).
    func mountVolumeSubpaths(_ rec: ContainerRecord) throws(EngineError) {
        let dir = dir(rec.id)
        for m in rec.mounts ?? [] where m.type == "volume" && !m.subpath.isEmpty {
            let target = Self.subpathMountPoint(containerDir: dir, destination: m.destination)
            do throws(SystemError) {
                try FileSystem.makeDirectories(target, mode: 0o700)
                BindMount.unmountAll(target)
                try BindMount.bindDirectory(beneath: volumes.mountpoint(m.name), m.subpath, onto: target)
            } catch {
                throw EngineError(.invalidArgument,
                                  "cannot access path \(m.subpath) in volume \(m.name): \(error.message)")
            }
        }
    }

    static func unmountVolumeSubpaths(containerDir: String) {
        let base = containerDir + "/subpaths"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] {
            BindMount.unmountAll(base + "/" + entry)
            rmdir(base + "/" + entry)
        }
    }

    // MARK: Wait

    public enum WaitCondition: String, Sendable {
        case notRunning = "not-running", nextExit = "next-exit", removed
    }

    /// Waits for the condition; returns the exit code.
    public func wait(_ ref: String, condition: WaitCondition) async throws(EngineError) -> Int32 {
        let id = try resolve(ref)
        let seen = exitCounts[id, default: 0]
        while true {
            guard let rec = containers[id] else { return removedExitCodes[id] ?? 0 }
            switch condition {
            case .notRunning where !rec.running: return rec.exitCode
            case .nextExit where exitCounts[id, default: 0] > seen: return rec.exitCode
            default: break
            }
            do { try await Task.sleep(for: .milliseconds(20)) } catch {
                throw EngineError(.invalidState, "wait cancelled")
            }
        }
    }

    // MARK: Signals

    public func kill(_ ref: String, signal: String?) async throws(EngineError) {
        let id = try resolve(ref)
        let text = signal.flatMap { $0.isEmpty ? nil : $0 } ?? "SIGKILL"
        guard let number = Signal.parse(text) else { throw EngineError(.invalidArgument, "Invalid signal: \(text)") }
        guard containers[id]!.running else {
            throw EngineError(.conflict, "Container \(id) is not running")
        }
        containers[id]!.manuallyStopped = true
        try persist(containers[id]!)
        let result = await runtime(["kill", id, String(number)])
        guard result.succeeded else { throw EngineError(.system, Self.trimmed(result.output)) }
        publish(container: containers[id]!, "kill", extra: ["signal": String(number)])
        await thawAfterSignal(id)
        // As dockerd: a SIGKILL returns once the container has exited, so the next inspect
        // never shows it running.
        if number == SIGKILL { _ = await waitStopped(id, seconds: 10) }
    }

    /// `signal` (default the container's stop signal, else SIGTERM), then SIGKILL after
    /// `timeout` seconds (default the container's, else 10). A container waiting to be
    /// restarted by its policy just stays stopped.
    public func stop(_ ref: String, timeout: Int?, signal requested: String? = nil) async throws(EngineError) {
        let id = try resolve(ref)
        // A start in flight (the restart policy's, say) finishes first; then it is stopped.
        while starting.contains(id) { try? await Task.sleep(for: .milliseconds(10)) }
        guard containers[id] != nil else { throw EngineError(.notFound, "No such container: \(ref)") }
        var rec = containers[id]!
        if rec.status == .restarting {
            try rec.transition(to: .exited)
            rec.manuallyStopped = true
            containers[id] = rec
            try persist(rec)
            publish(container: rec, "stop")
            return
        }
        guard rec.running else { throw EngineError(.notModified, "container already stopped") }
        let signalText = requested.flatMap { $0.isEmpty ? nil : $0 } ?? rec.config.stopSignal ?? "SIGTERM"
        guard let signal = Signal.parse(signalText) else { throw EngineError(.invalidArgument, "Invalid signal: \(signalText)") }
        rec.manuallyStopped = true
        containers[id] = rec
        try persist(rec)
        let seconds = timeout ?? rec.config.stopTimeout ?? 10
        _ = await runtime(["kill", id, String(signal)])
        publish(container: rec, "kill", extra: ["signal": String(signal)])
        await thawAfterSignal(id)
        let stopped = seconds >= 0 ? await waitStopped(id, seconds: Double(seconds)) : false
        if !stopped {
            _ = await runtime(["kill", id, "SIGKILL"])
            publish(container: rec, "kill", extra: ["signal": String(SIGKILL)])
            _ = await waitStopped(id, seconds: 30)
        }
        if let rec = containers[id] { publish(container: rec, "stop") }
    }

    func waitStopped(_ id: String, seconds: Double) async -> Bool {
        let deadline = monotonicSeconds() + seconds
        while containers[id]?.running == true {
            if monotonicSeconds() >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    // MARK: Remove

    /// `volumes` (`docker rm -v`) also removes the container's anonymous volumes.
    public func remove(_ ref: String, force: Bool, volumes removeVolumes: Bool = false) async throws(EngineError) {
        let id = try resolve(ref)
        guard !removing.contains(id) else { return }
        guard !starting.contains(id) else {
            throw EngineError(.conflict, "cannot remove container \(id): it is being started; try again")
        }
        if containers[id]!.running {
            guard force else {
                throw EngineError(.conflict, "cannot remove container \"\(containers[id]!.name)\": container is running: stop the container before removing or force remove")
            }
            removing.insert(id)
            _ = await runtime(["kill", id, "SIGKILL"])
            await thawAfterSignal(id)
            if !(await waitStopped(id, seconds: 10)) {
                removing.remove(id)
                throw EngineError(.system, "container \(id) did not exit after SIGKILL")
            }
        }
        removing.insert(id)
        defer { removing.remove(id) }
        guard var rec = containers[id] else { return }
        if rec.runtimeCreated {
            rec.runtimeCreated = false
            containers[id] = rec
            _ = await runtime(["delete", "--force", id])
        }
        rec = containers[id] ?? rec
        unmountRootfs(&rec)
        releaseNetwork(&rec)
        for waiter in pendingAttaches.removeValue(forKey: id) ?? [] { waiter.finish() }
        // The record goes first: a crash from here on leaves a directory without container.json,
        // which the next start sweeps away, never a container with half its files.
        unlink(dir(id) + "/container.json")
        try? FileSystem.syncDirectory(dir(id))
        try? images.snapshots.remove(container: id)
        do { try FileSystem.removeTree(dir(id)) } catch {
            throw EngineError(.system, error.message)
        }
        removedExitCodes[id] = rec.exitCode
        containers[id] = nil
        publish(container: rec, "destroy")
        releaseVolumes(of: rec, removeAnonymous: removeVolumes || rec.hostConfig.autoRemove == true)
    }
}

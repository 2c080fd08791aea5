import BerthHTTP
import BerthOCI
import FoundationEssentials
import Glibc
import NIOCore
import NIOHTTP1

/// The distribution spec's endpoints (OCI distribution-spec 1.1, "API" and "Endpoints"), as
/// routes over a `RegistryStore`. Repository names contain slashes, so each route takes the
/// name as a catch-all segment; the upload routes are registered before the blob routes.
struct RegistryRoutes: Sendable {
    let store: RegistryStore
    let authenticator: Authenticator?

    func register(on router: inout Router) {
        router.get("/v2") { request in
            try await authorize(request)
            return Response(headers: ["Content-Type": "application/json"], body: .bytes(ByteBuffer(string: "{}")))
        }
        router.get("/v2/_catalog") { request in try await authorize(request); return try catalog(request) }
        router.get("/v1/search") { request in try await authorize(request); return try search(request) }

        route(&router, .POST, "/blobs/uploads", startUpload)
        route(&router, .GET, "/blobs/uploads/{id}", uploadStatus)
        route(&router, .PATCH, "/blobs/uploads/{id}", patchUpload)
        route(&router, .PUT, "/blobs/uploads/{id}", finishUpload)
        route(&router, .DELETE, "/blobs/uploads/{id}", cancelUpload)
        route(&router, .GET, "/blobs/{digest}", getBlob)
        route(&router, .HEAD, "/blobs/{digest}", getBlob)
        route(&router, .DELETE, "/blobs/{digest}", deleteBlob)
        route(&router, .GET, "/manifests/{reference}", getManifest)
        route(&router, .HEAD, "/manifests/{reference}", getManifest)
        route(&router, .PUT, "/manifests/{reference}", putManifest)
        route(&router, .DELETE, "/manifests/{reference}", deleteManifest)
        route(&router, .GET, "/tags/list", listTags)
        route(&router, .GET, "/referrers/{digest}", listReferrers)
    }

    /// Registers `/v2/<name>/<suffix>`, checking credentials and the name first.
    private func route(
        _ router: inout Router, _ method: HTTPMethod, _ suffix: String,
        _ handler: @escaping @Sendable (String, Request) async throws -> Response
    ) {
        router.add(method, "/v2/{name:.*}" + suffix) { request in
            try await authorize(request)
            let name = request.parameter("name")
            guard Names.isValidRepository(name) else { throw RegistryError(.nameInvalid, "invalid repository name", detail: name) }
            return try await handler(name, request)
        }
    }

    private func authorize(_ request: Request) async throws(RegistryError) {
        try await authenticator?.check(
            request.headers.first(name: "Authorization"), client: Authenticator.clientKey(request.remoteAddress))
    }

    // MARK: Blobs

    private func getBlob(_ name: String, _ request: Request) async throws -> Response {
        let digest = try parseDigest(request.parameter("digest"))
        let (fd, size) = try store.openBlob(name, digest)
        var headers: HTTPHeaders = [
            "Content-Type": "application/octet-stream", "Docker-Content-Digest": digest.string,
            "Accept-Ranges": "bytes", "Etag": "\"\(digest.string)\"",
        ]
        var status = HTTPResponseStatus.ok
        var range = ByteRange(first: 0, last: size - 1)
        if let header = request.headers.first(name: "Range"), request.method == .GET {
            guard let asked = ByteRange.parse(requestHeader: header, size: size) else {
                close(fd)
                var error = RegistryError(.rangeInvalid, "requested range not satisfiable", detail: header)
                error.headers.add(name: "Content-Range", value: "bytes */\(size)")
                throw error
            }
            range = asked
            status = .partialContent
            headers.add(name: "Content-Range", value: "bytes \(range.first)-\(range.last)/\(size)")
        }
        headers.add(name: "Content-Length", value: "\(max(0, range.count))")
        guard request.method == .GET, range.count > 0 else {
            close(fd)
            return Response(status: status, headers: headers)
        }
        let sent = range
        return Response(status: status, headers: headers, body: .stream { out in
            defer { close(fd) }
            try await BlobReader.send(fd: fd, range: sent, to: out)
        })
    }

    private func deleteBlob(_ name: String, _ request: Request) async throws -> Response {
        let digest = try parseDigest(request.parameter("digest"))
        try store.deleteBlob(name, digest)
        return Response(status: .accepted, headers: ["Content-Length": "0"])
    }

    // MARK: Uploads

    private func startUpload(_ name: String, _ request: Request) async throws -> Response {
        if let mount = request.query["mount"], let from = request.query["from"] {
            let digest = try parseDigest(mount)
            if try store.mount(digest, from: from, into: name) {
                return Response(status: .created, headers: [
                    "Location": "/v2/\(name)/blobs/\(digest)", "Docker-Content-Digest": digest.string, "Content-Length": "0",
                ])
            }
        }
        if let digestText = request.query["digest"] {
            let digest = try parseDigest(digestText)
            try await store.putBlob(name, digest: digest, body: request.body)
            return Response(status: .created, headers: [
                "Location": "/v2/\(name)/blobs/\(digest)", "Docker-Content-Digest": digest.string, "Content-Length": "0",
            ])
        }
        let id = try store.startUpload(name)
        return uploadResponse(.accepted, name, id, size: 0)
    }

    private func uploadStatus(_ name: String, _ request: Request) async throws -> Response {
        let id = request.parameter("id")
        return uploadResponse(.noContent, name, id, size: try store.uploadSize(name, id))
    }

    private func patchUpload(_ name: String, _ request: Request) async throws -> Response {
        let id = request.parameter("id")
        var start: Int64?
        if let header = request.headers.first(name: "Content-Range") {
            guard let range = ByteRange.parse(contentRange: header) else {
                throw RegistryError(.rangeInvalid, "invalid Content-Range", detail: header)
            }
            if let length = request.headers.first(name: "Content-Length").flatMap(Int64.init), length != range.count {
                throw RegistryError(.rangeInvalid, "Content-Range does not match Content-Length", detail: header)
            }
            start = range.first
        }
        let size = try await store.append(name, id, start: start, body: request.body)
        return uploadResponse(.accepted, name, id, size: size)
    }

    private func finishUpload(_ name: String, _ request: Request) async throws -> Response {
        let id = request.parameter("id")
        guard let digestText = request.query["digest"] else {
            throw RegistryError.digestInvalid("a digest query parameter is required to finish an upload")
        }
        let digest = try parseDigest(digestText)
        try await store.finishUpload(name, id, digest: digest, body: request.body)
        return Response(status: .created, headers: [
            "Location": "/v2/\(name)/blobs/\(digest)", "Docker-Content-Digest": digest.string, "Content-Length": "0",
        ])
    }

    private func cancelUpload(_ name: String, _ request: Request) async throws -> Response {
        try store.cancelUpload(name, request.parameter("id"))
        return Response(status: .noContent)
    }

    /// `Range` here is the spec's `0-<last byte>` (no unit), `0-0` for an empty upload.
    private func uploadResponse(_ status: HTTPResponseStatus, _ name: String, _ id: String, size: Int64) -> Response {
        Response(status: status, headers: [
            "Location": "/v2/\(name)/blobs/uploads/\(id)", "Range": "0-\(max(0, size - 1))",
            "Docker-Upload-UUID": id, "Content-Length": "0",
        ])
    }

    // MARK: Manifests

    private func getManifest(_ name: String, _ request: Request) async throws -> Response {
        let reference = request.parameter("reference")
        guard store.repositoryExists(name) else { throw RegistryError.nameUnknown(name) }
        var manifest = try store.manifest(name, reference)
        // A client that cannot read a list gets the linux/amd64 image from it, as distribution does.
        let accepted = request.headers[canonicalForm: "Accept"].map { String($0.split(separator: ";")[0].trimmingSpaces) }
        if MediaType.isIndex(manifest.mediaType), !accepted.isEmpty,
           !accepted.contains(manifest.mediaType), !accepted.contains("*/*"),
           let parsed = try? ParsedManifest(bytes: manifest.bytes, contentType: manifest.mediaType),
           let child = parsed.children.first(where: { $0.platform?.os == "linux" && $0.platform?.architecture == "amd64" }),
           accepted.contains(child.mediaType),
           let resolved = try? store.manifest(name, child.digest.string) {
            manifest = resolved
        }
        let headers: HTTPHeaders = [
            "Content-Type": manifest.mediaType, "Docker-Content-Digest": manifest.digest.string,
            "Etag": "\"\(manifest.digest.string)\"", "Content-Length": "\(manifest.bytes.count)",
        ]
        if request.method == .HEAD { return Response(headers: headers) }
        return Response(headers: headers, body: .bytes(ByteBuffer(bytes: manifest.bytes)))
    }

    private func putManifest(_ name: String, _ request: Request) async throws -> Response {
        let reference = request.parameter("reference")
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: RegistryStore.maximumManifestSize)
        } catch let error as HTTPError where error.status == .payloadTooLarge {
            throw RegistryError(.sizeInvalid, "manifest is larger than \(RegistryStore.maximumManifestSize) bytes")
        }
        let stored = try store.putManifest(
            name, reference, bytes: Array(body.readableBytesView), contentType: request.headers.first(name: "Content-Type"))
        var headers: HTTPHeaders = [
            "Location": "/v2/\(name)/manifests/\(stored.digest)", "Docker-Content-Digest": stored.digest.string, "Content-Length": "0",
        ]
        if let subject = stored.subject { headers.add(name: "OCI-Subject", value: subject.string) }
        return Response(status: .created, headers: headers)
    }

    private func deleteManifest(_ name: String, _ request: Request) async throws -> Response {
        try store.deleteManifest(name, request.parameter("reference"))
        return Response(status: .accepted, headers: ["Content-Length": "0"])
    }

    // MARK: Listings

    private func listTags(_ name: String, _ request: Request) async throws -> Response {
        guard store.repositoryExists(name) else { throw RegistryError.nameUnknown(name) }
        let page = try Page(request.query, all: store.tags(name))
        var response = try Response.json(TagList(name: name, tags: page.items))
        page.link("/v2/\(name)/tags/list", into: &response.headers)
        return response
    }

    private func catalog(_ request: Request) throws -> Response {
        let page = try Page(request.query, all: store.repositories())
        var response = try Response.json(Catalog(repositories: page.items))
        page.link("/v2/_catalog", into: &response.headers)
        return response
    }

    /// The v1 search API `docker search HOST/TERM` asks for: repositories whose name contains
    /// the term, `n` of them at most (25 by default).
    private func search(_ request: Request) throws -> Response {
        let query = (request.query["q"] ?? "").lowercased()
        let limit = max(1, min(100, Int(request.query["n"] ?? "") ?? 25))
        let matches = store.repositories().filter { query.isEmpty || $0.contains(query) }
        let results = matches.prefix(limit).map { SearchResults.Result(name: $0) }
        return try Response.json(SearchResults(numResults: matches.count, query: query, results: Array(results)))
    }

    private func listReferrers(_ name: String, _ request: Request) async throws -> Response {
        let digest = try parseDigest(request.parameter("digest"))
        var referrers = store.referrers(name, digest)
        var headers: HTTPHeaders = ["Content-Type": MediaType.imageIndex]
        if let wanted = request.query["artifactType"] {
            referrers = referrers.filter { $0.artifactType == wanted }
            headers.add(name: "OCI-Filters-Applied", value: "artifactType")
        }
        let index = ImageIndex(manifests: referrers)
        return Response(headers: headers, body: .bytes(ByteBuffer(bytes: try RegistryJSON.encode(index))))
    }

    private func parseDigest(_ text: String) throws(RegistryError) -> Digest {
        do {
            return try Digest(text)
        } catch {
            throw .digestInvalid("invalid digest", detail: text)
        }
    }
}

/// `n` and `last` pagination (spec: "Listing Tags"): items after `last`, at most `n`, and a
/// `Link: <...>; rel="next"` header when more remain.
struct Page {
    var items: [String]
    var next: (n: Int, last: String)?

    init(_ query: QueryItems, all: [String]) throws(RegistryError) {
        var items = all
        if let last = query["last"], !last.isEmpty { items = items.filter { $0 > last } }
        guard let text = query["n"], !text.isEmpty else {
            self.items = items
            return
        }
        guard let n = Int(text), n >= 0 else {
            throw RegistryError(.paginationNumberInvalid, "invalid number of results requested", detail: text)
        }
        self.items = Array(items.prefix(n))
        if items.count > n, let last = self.items.last { next = (n, last) }
    }

    func link(_ path: String, into headers: inout HTTPHeaders) {
        guard let next else { return }
        headers.add(name: "Link", value: "<\(path)?n=\(next.n)&last=\(next.last)>; rel=\"next\"")
    }
}

struct TagList: Codable {
    var name: String
    var tags: [String]
}

struct Catalog: Codable {
    var repositories: [String]
}

/// The v1 search answer: what Docker Hub's index sends, with nothing to say of stars here.
struct SearchResults: Encodable {
    struct Result: Encodable {
        var name: String
        var description = ""
        var starCount = 0
        var isOfficial = false
        var isAutomated = false
        enum CodingKeys: String, CodingKey {
            case name, description, starCount = "star_count", isOfficial = "is_official", isAutomated = "is_automated"
        }
    }

    var numResults: Int
    var query: String
    var results: [Result]
    enum CodingKeys: String, CodingKey { case numResults = "num_results", query, results }
}

/// Sends part of an open file as a response body, a megabyte at a time, at the client's pace.
enum BlobReader {
    static let chunkSize = 1 << 20

    static func send(fd: Int32, range: ByteRange, to out: ResponseStream) async throws {
        var offset = range.first
        let end = range.last + 1
        while offset < end {
            let want = Int(min(Int64(chunkSize), end - offset))
            var buffer = ByteBufferAllocator().buffer(capacity: want)
            let n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { raw in
                var got = 0
                while got < want {
                    let r = pread(fd, raw.baseAddress! + got, want - got, off_t(offset) + off_t(got))
                    if r < 0, errno == EINTR { continue }
                    guard r > 0 else { throw RegistryError.storage("blob ended early or could not be read") }
                    got += r
                }
                return got
            }
            offset += Int64(n)
            try await out.write(buffer)
        }
    }
}

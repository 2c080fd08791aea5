import XCTest
@testable import BerthRegistry

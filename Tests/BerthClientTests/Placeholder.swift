import XCTest
@testable import BerthClient

import XCTest
@testable import BerthVolumes

// Long polling: ask for what follows the last id; the server answers when something happens.
import { keepConnected } from './links.js'

keepConnected('longpolling')

// The long-polling page: ask for what follows the cursors; the server answers when something happens.
import { keepConnected } from './links.js'

keepConnected('longpolling')
